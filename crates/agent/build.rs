//! guestlinkd's link options: identical code folding, its function layout
//! (`layout.order`) and a link map, as `scripts/layout-link.rs` describes.

#[path = "../../scripts/layout-link.rs"]
mod layout_link;

fn main() {
    layout_link::link_options("guestlinkd");
}
