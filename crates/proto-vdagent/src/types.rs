//! Chunk ports, message types and capability bits, with their protocol numbers.

/// A chunk port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// `VDP_CLIENT_PORT`: to or from the SPICE client (and everything from QEMU).
    Client = 1,
    /// `VDP_SERVER_PORT`: from spice-server itself.
    Server = 2,
}

impl Port {
    /// The port with this number, if it is one.
    pub fn from_u32(n: u32) -> Option<Port> {
        match n {
            1 => Some(Port::Client),
            2 => Some(Port::Server),
            _ => None,
        }
    }
}

macro_rules! message_types {
    ($($name:ident = $n:literal),* $(,)?) => {
        /// A message type (`VD_AGENT_*`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MessageType {
            $(
                #[allow(missing_docs)]
                $name = $n,
            )*
        }

        impl MessageType {
            /// The type with this number; `None` for numbers this protocol version does
            /// not define (to be ignored, for forward compatibility).
            pub fn from_u32(n: u32) -> Option<MessageType> {
                match n {
                    $($n => Some(MessageType::$name),)*
                    _ => None,
                }
            }
        }
    };
}

message_types! {
    MouseState = 1,
    MonitorsConfig = 2,
    Reply = 3,
    Clipboard = 4,
    DisplayConfig = 5,
    AnnounceCapabilities = 6,
    ClipboardGrab = 7,
    ClipboardRequest = 8,
    ClipboardRelease = 9,
    FileXferStart = 10,
    FileXferStatus = 11,
    FileXferData = 12,
    ClientDisconnected = 13,
    MaxClipboard = 14,
    AudioVolumeSync = 15,
    GraphicsDeviceInfo = 16,
}

/// A capability bitmap: bit `n % 32` of word `n / 32`. Bits beyond the words a peer
/// sent are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(pub Vec<u32>);

impl Capabilities {
    /// Whether capability `n` is set.
    pub fn has(&self, n: u32) -> bool {
        self.0
            .get((n / 32) as usize)
            .is_some_and(|w| w & (1 << (n % 32)) != 0)
    }

    /// Sets capability `n`.
    pub fn set(&mut self, n: u32) {
        let word = (n / 32) as usize;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (n % 32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(
            MessageType::from_u32(16),
            Some(MessageType::GraphicsDeviceInfo)
        );
        assert_eq!(MessageType::from_u32(0), None);
        assert_eq!(MessageType::from_u32(17), None);
        assert_eq!(Port::from_u32(0), None);
        assert_eq!(Port::from_u32(3), None);
    }

    #[test]
    fn capability_words() {
        // spice-vdagentd 0.22.1's announcement.
        let c = Capabilities(vec![0x0003_8de7]);
        for bit in [0, 1, 2, 5, 6, 7, 8, 10, 11, 15, 16, 17] {
            assert!(c.has(bit), "{bit}");
        }
        assert!(!c.has(3) && !c.has(4) && !c.has(40));
        let mut d = Capabilities::default();
        d.set(33);
        assert_eq!(d.0, [0, 2]);
    }
}
