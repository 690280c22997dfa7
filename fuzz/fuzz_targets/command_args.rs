//! Argument decoding: any JSON object against every command's declared arguments, as
//! the dispatcher does before a handler runs. No panic; an error names a path.
#![no_main]

use guestlink_vocabulary::types::parse_args;
use guestlink_vocabulary::Command;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

macro_rules! decode_all {
    ($map:expr; $($c:ty),*) => {
        $( let _ = parse_args::<<$c as Command>::Args>($map.clone()); )*
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    macro_rules! each {
        ($($c:path),*) => { decode_all!(map; $($c),*) };
    }
    guestlink_vocabulary::for_each_command!(each);
});
