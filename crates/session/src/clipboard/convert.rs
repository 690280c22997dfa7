//! Image format conversion for the clipboard: every image-capable SPICE peer takes
//! PNG, but a desktop or a Windows client may offer only BMP, TIFF or JPEG. guestlinkd
//! announces PNG whenever the other side has any image; the conversion is done here, in
//! the session agent, so that the system daemon carries no image decoders. Decoding is
//! bounded by the clipboard limit on the input and by a pixel budget on the output, and
//! runs off the async threads.

use std::io::Cursor;

use guestlink_vocabulary::types::ClipboardSelection;

use super::Clipboard;

/// The MIME type every image-capable peer takes.
pub const PNG: &str = "image/png";

/// The other image types a selection may hold, tried in turn when PNG is asked for.
const OTHER_IMAGES: &[&str] = &["image/bmp", "image/x-bmp", "image/tiff", "image/jpeg"];

use image::{ImageFormat, ImageReader, Limits};

/// The most pixels a converted image may have (a 16k × 8k screenshot).
pub const PIXEL_LIMIT: u64 = 16384 * 8192;

/// The format of an image MIME type this module can decode.
pub fn format_of(mime: &str) -> Option<ImageFormat> {
    Some(match mime.split(';').next().unwrap_or(mime).trim() {
        "image/png" => ImageFormat::Png,
        "image/bmp" | "image/x-bmp" | "image/x-MS-bmp" | "image/x-win-bitmap" => ImageFormat::Bmp,
        "image/tiff" => ImageFormat::Tiff,
        "image/jpeg" => ImageFormat::Jpeg,
        _ => return None,
    })
}

/// `data` in `from` (a MIME type) as PNG.
pub fn to_png(data: &[u8], from: &str) -> Result<Vec<u8>, String> {
    let format = format_of(from).ok_or_else(|| format!("cannot convert {from} to PNG"))?;
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(PIXEL_LIMIT * 4);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("cannot read the {from} image: {e}"))?;
    if u64::from(img.width()) * u64::from(img.height()) > PIXEL_LIMIT {
        return Err(format!("the image is larger than {PIXEL_LIMIT} pixels"));
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| format!("cannot write PNG: {e}"))?;
    Ok(out.into_inner())
}

/// What was asked for (`want`), made of what came (`got`: a type and its bytes): an
/// image in another format than the PNG asked for is converted; anything else is
/// passed on as it is.
pub async fn as_wanted(
    want: Option<&str>,
    got: (String, Vec<u8>),
) -> Result<(String, Vec<u8>), String> {
    let (mime, data) = got;
    if want != Some(PNG) || format_of(&mime).is_none_or(|f| f == ImageFormat::Png) {
        return Ok((mime, data));
    }
    let png = tokio::task::spawn_blocking(move || to_png(&data, &mime))
        .await
        .map_err(|e| e.to_string())??;
    Ok((PNG.to_string(), png))
}

/// Reads a selection in `mime`; PNG is made from another image type the selection
/// holds when it has no PNG itself.
pub async fn get(
    clipboard: &Clipboard,
    selection: ClipboardSelection,
    mime: Option<String>,
) -> Result<(String, Vec<u8>), String> {
    let first = clipboard.get(selection, mime.clone()).await;
    if first.is_ok() || mime.as_deref() != Some(PNG) {
        return first;
    }
    for other in OTHER_IMAGES {
        if let Ok(got) = clipboard.get(selection, Some(other.to_string())).await {
            return as_wanted(Some(PNG), got).await;
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(format: ImageFormat) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 80, y as u8 * 120, 7]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn bmp_and_tiff_become_the_same_png_pixels() {
        for (format, mime) in [
            (ImageFormat::Bmp, "image/bmp"),
            (ImageFormat::Tiff, "image/tiff"),
        ] {
            let png = to_png(&sample(format), mime).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let back = image::load_from_memory_with_format(&png, ImageFormat::Png)
                .unwrap()
                .to_rgb8();
            assert_eq!(back.get_pixel(2, 1), &image::Rgb([160, 120, 7]), "{mime}");
        }
    }

    #[test]
    fn garbage_and_unknown_types_are_errors() {
        assert!(to_png(b"not an image", "image/bmp").is_err());
        assert!(to_png(b"", "image/tiff").is_err());
        assert!(to_png(b"x", "image/webp").is_err());
        // A BMP header that claims a huge image is refused before allocating it.
        let mut bmp = sample(ImageFormat::Bmp);
        bmp[18..22].copy_from_slice(&100_000i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&100_000i32.to_le_bytes());
        assert!(to_png(&bmp, "image/bmp").is_err());
    }
}
