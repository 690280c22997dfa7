//! What the fuzz targets share: cutting one input into the reads a transport would
//! deliver, so that every split of a stream is tried.

/// `data` cut into pieces: the first byte seeds the piece sizes (1 to 64 bytes, or the
/// whole rest when it is 0), so the fuzzer controls where reads end.
pub fn reads(data: &[u8]) -> Vec<&[u8]> {
    let Some((&seed, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    if seed == 0 {
        return vec![rest];
    }
    let mut state = u32::from(seed);
    let mut out = Vec::new();
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (((state >> 16) % 64) as usize + 1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        out.push(piece);
        rest = tail;
    }
    out
}
