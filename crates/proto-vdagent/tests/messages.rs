//! Message data against the spec's size rules, the peers' quirks, and arbitrary bytes.

use guestlink_proto_vdagent::messages::{
    DeviceDisplay, Monitor, MonitorsConfig, PHYSICAL_SIZE, USE_POS,
};
use guestlink_proto_vdagent::{AgentMessage, Capabilities, MessageError, Negotiated};
use proptest::prelude::*;

const BOTH: Negotiated = Negotiated {
    selection: true,
    grab_serial: true,
};
const NONE: Negotiated = Negotiated {
    selection: false,
    grab_serial: false,
};

fn size_error(kind: u32, data: &[u8], n: Negotiated) -> bool {
    matches!(
        AgentMessage::parse(kind, data, n),
        Err(MessageError::Size { .. })
    )
}

#[test]
fn exact_sizes() {
    // MOUSE_STATE 13, DISPLAY_CONFIG 8, REPLY 8, MAX_CLIPBOARD 4, CLIENT_DISCONNECTED 0,
    // CLIPBOARD_REQUEST 4 (+4), CLIPBOARD_RELEASE 0 (+4).
    for (kind, size, n) in [
        (1, 13, NONE),
        (5, 8, NONE),
        (3, 8, NONE),
        (14, 4, NONE),
        (13, 0, NONE),
        (8, 4, NONE),
        (8, 8, BOTH),
        (9, 0, NONE),
        (9, 4, BOTH),
    ] {
        assert!(
            AgentMessage::parse(kind, &vec![0; size], n).is_ok(),
            "{kind} {size}"
        );
        assert!(
            size_error(kind, &vec![0; size + 1], n),
            "{kind} {}",
            size + 1
        );
        if size > 0 {
            assert!(
                size_error(kind, &vec![0; size - 1], n),
                "{kind} {}",
                size - 1
            );
        }
    }
}

#[test]
fn minimum_sizes_and_unknown_types() {
    for (kind, min, n) in [
        (2, 8, NONE),
        (10, 4, NONE),
        (12, 12, NONE),
        (4, 8, BOTH),
        (7, 8, BOTH),
        (15, 3, NONE),
        (6, 4, NONE),
        (16, 4, NONE),
    ] {
        assert!(size_error(kind, &vec![0; min - 1], n), "{kind}");
    }
    assert_eq!(
        AgentMessage::parse(0, &[], NONE),
        Err(MessageError::UnknownType(0))
    );
    assert_eq!(
        AgentMessage::parse(17, &[], NONE),
        Err(MessageError::UnknownType(17))
    );
}

#[test]
fn monitors_config_with_the_physical_size_array() {
    // What spice-gtk sends: two monitors, USE_POS | PHYSICAL_SIZE, then the mm array.
    let c = MonitorsConfig {
        flags: USE_POS | PHYSICAL_SIZE,
        monitors: vec![
            Monitor {
                height: 768,
                width: 1024,
                depth: 32,
                x: 0,
                y: 0,
            },
            Monitor {
                height: 1080,
                width: 1920,
                depth: 32,
                x: 1024,
                y: 0,
            },
        ],
        physical: Some(vec![(200, 300), (0, 0)]),
    };
    let data = AgentMessage::MonitorsConfig(c.clone()).to_data(NONE);
    assert_eq!(data.len(), 8 + 2 * 20 + 2 * 4);
    // Height comes first on the wire.
    assert_eq!(&data[8..12], &768u32.to_le_bytes());
    assert_eq!(
        AgentMessage::parse(2, &data, NONE).unwrap(),
        AgentMessage::MonitorsConfig(c)
    );
    // The flag without the array, and a count the data cannot hold, are refused.
    assert!(size_error(2, &data[..48], NONE));
    let mut huge = data.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(size_error(2, &huge, NONE));
}

#[test]
fn clipboard_layouts_follow_the_negotiation() {
    let grab = AgentMessage::ClipboardGrab {
        selection: 1,
        serial: Some(7),
        types: vec![1, 2],
    };
    let data = grab.to_data(BOTH);
    assert_eq!(data, [1, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(AgentMessage::parse(7, &data, BOTH).unwrap(), grab);
    let plain = AgentMessage::ClipboardGrab {
        selection: 0,
        serial: None,
        types: vec![1],
    };
    assert_eq!(plain.to_data(NONE), [1, 0, 0, 0]);
    // QEMU with selection but without serial.
    let sel_only = Negotiated {
        selection: true,
        grab_serial: false,
    };
    assert_eq!(
        AgentMessage::parse(7, &[0, 0, 0, 0, 1, 0, 0, 0], sel_only).unwrap(),
        AgentMessage::ClipboardGrab {
            selection: 0,
            serial: None,
            types: vec![1]
        }
    );
    let ours = Capabilities(vec![(1 << 6) | (1 << 17)]);
    let qemu = Capabilities(vec![(1 << 5) | (1 << 6)]);
    assert_eq!(Negotiated::of(&ours, &qemu), sel_only);
}

#[test]
fn file_transfer_data_must_match_its_size_field() {
    let m = AgentMessage::FileXferData {
        id: 3,
        data: b"abc".to_vec(),
    };
    let mut data = m.to_data(NONE);
    assert_eq!(AgentMessage::parse(12, &data, NONE).unwrap(), m);
    data.push(0);
    assert!(size_error(12, &data, NONE));
    let start = AgentMessage::parse(
        10,
        b"\x01\x00\x00\x00[vdagent-file-xfer]\nname=a.txt\nsize=3\n\x00",
        NONE,
    )
    .unwrap();
    assert_eq!(
        start,
        AgentMessage::FileXferStart {
            id: 1,
            keyfile: b"[vdagent-file-xfer]\nname=a.txt\nsize=3\n".to_vec()
        }
    );
}

#[test]
fn graphics_device_info_records_are_bounded() {
    let m = AgentMessage::GraphicsDeviceInfo(vec![DeviceDisplay {
        channel_id: 0,
        monitor_id: 0,
        device_display_id: 1,
        address: "pci/0000/02.0".into(),
    }]);
    let data = m.to_data(NONE);
    assert_eq!(AgentMessage::parse(16, &data, NONE).unwrap(), m);
    let mut lying = data.clone();
    lying[..4].copy_from_slice(&2u32.to_le_bytes());
    assert!(size_error(16, &lying, NONE));
    let mut long = data.clone();
    long[16..20].copy_from_slice(&1000u32.to_le_bytes());
    assert!(size_error(16, &long, NONE));
}

fn any_message() -> impl Strategy<Value = AgentMessage> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u8>()).prop_map(
            |(x, y, buttons, display_id)| AgentMessage::MouseState {
                x,
                y,
                buttons,
                display_id
            }
        ),
        (any::<u32>(), any::<u32>()).prop_map(|(kind, error)| AgentMessage::Reply { kind, error }),
        (0u8..3, any::<u32>(), bytes()).prop_map(|(selection, kind, data)| {
            AgentMessage::Clipboard {
                selection,
                kind,
                data,
            }
        }),
        (any::<bool>(), prop::collection::vec(any::<u32>(), 0..4)).prop_map(|(request, w)| {
            AgentMessage::AnnounceCapabilities {
                request,
                caps: Capabilities(w),
            }
        }),
        (
            0u8..3,
            any::<u32>(),
            prop::collection::vec(any::<u32>(), 0..8)
        )
            .prop_map(|(selection, s, types)| AgentMessage::ClipboardGrab {
                selection,
                serial: Some(s),
                types
            }),
        (0u8..3, any::<u32>())
            .prop_map(|(selection, kind)| AgentMessage::ClipboardRequest { selection, kind }),
        (0u8..3).prop_map(|selection| AgentMessage::ClipboardRelease { selection }),
        (any::<u32>(), any::<u32>(), bytes())
            .prop_map(|(id, result, detail)| AgentMessage::FileXferStatus { id, result, detail }),
        (any::<u32>(), bytes()).prop_map(|(id, data)| AgentMessage::FileXferData { id, data }),
        Just(AgentMessage::ClientDisconnected),
        any::<i32>().prop_map(AgentMessage::MaxClipboard),
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(any::<u16>(), 0..8)
        )
            .prop_map(|(playback, mute, volume)| AgentMessage::AudioVolumeSync {
                playback,
                mute,
                volume
            }),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(m in any_message()) {
        let data = m.to_data(BOTH);
        prop_assert_eq!(AgentMessage::parse(m.kind() as u32, &data, BOTH).unwrap(), m);
    }

    #[test]
    fn arbitrary_data_never_panics(kind in 0u32..20, data in prop::collection::vec(any::<u8>(), 0..200), sel in any::<bool>(), serial in any::<bool>()) {
        let _ = AgentMessage::parse(kind, &data, Negotiated { selection: sel, grab_serial: serial });
    }
}
