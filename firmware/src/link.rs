//! Drives an [`MqttClient`] over an `embedded-io` byte stream (a TCP socket on a modem, a
//! UART to a radio module, or `std::net::TcpStream` in host tests).
//!
//! The driver only moves bytes; every decision stays in the client. Opening and closing the
//! transport is the board's business (see [`crate::mqtt::MqttEvent::OpenTransport`]).

use embedded_io::{Read, ReadReady, Write};

use crate::hal::Millis;
use crate::mqtt::{MqttClient, SessionState};

/// Why a service pass ended the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError<E: core::fmt::Debug> {
    #[error("transport error: {0:?}")]
    Io(E),
    #[error("the peer closed the transport")]
    Closed,
}

/// What a service pass did, so a board can decide whether to sleep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub bytes_written: usize,
    pub bytes_read: usize,
}

/// One pass over an open transport: writes what the client has queued, then reads whatever is
/// ready without blocking. On an error the client is told the transport is gone (it will back
/// off and ask for a new one); the board then drops the stream.
pub fn service<S, const N: usize, const B: usize>(
    client: &mut MqttClient<N, B>,
    stream: &mut S,
    now: Millis,
) -> Result<Activity, LinkError<S::Error>>
where
    S: Read + Write + ReadReady,
{
    let result = pump(client, stream, now);
    if result.is_err() {
        client.handle_transport_closed(now);
    }
    result
}

fn pump<S, const N: usize, const B: usize>(
    client: &mut MqttClient<N, B>,
    stream: &mut S,
    now: Millis,
) -> Result<Activity, LinkError<S::Error>>
where
    S: Read + Write + ReadReady,
{
    let mut activity = Activity::default();
    while !client.transmit_buffer().is_empty() {
        let n = stream
            .write(client.transmit_buffer())
            .map_err(LinkError::Io)?;
        if n == 0 {
            return Err(LinkError::Closed);
        }
        activity.bytes_written += n;
        client.mark_transmitted(n, now);
    }
    if activity.bytes_written > 0 {
        stream.flush().map_err(LinkError::Io)?;
    }
    let mut buf = [0u8; 128];
    while stream.read_ready().map_err(LinkError::Io)? {
        let n = stream.read(&mut buf).map_err(LinkError::Io)?;
        if n == 0 {
            return Err(LinkError::Closed);
        }
        activity.bytes_read += n;
        client.handle_bytes(&buf[..n], now);
        if matches!(client.state(), SessionState::Down { .. }) {
            // The client gave up on this link while reading (malformed input).
            break;
        }
    }
    Ok(activity)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::VecDeque;
    use std::vec::Vec as StdVec;

    use vigil_protocol::DeviceId;

    use super::*;
    use crate::mqtt::{MqttConfig, MqttEvent};

    #[derive(Debug, PartialEq)]
    struct Broken;
    impl core::fmt::Display for Broken {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("broken")
        }
    }
    impl core::error::Error for Broken {}
    impl embedded_io::Error for Broken {
        fn kind(&self) -> embedded_io::ErrorKind {
            embedded_io::ErrorKind::Other
        }
    }

    /// An in-memory stream that takes at most `chunk` bytes per write.
    struct Pipe {
        written: StdVec<u8>,
        to_read: VecDeque<u8>,
        chunk: usize,
        closed: bool,
        fail_writes: bool,
    }

    impl embedded_io::ErrorType for Pipe {
        type Error = Broken;
    }
    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken> {
            let n = buf.len().min(self.to_read.len());
            for b in buf.iter_mut().take(n) {
                *b = self.to_read.pop_front().unwrap_or(0);
            }
            Ok(n)
        }
    }
    impl ReadReady for Pipe {
        fn read_ready(&mut self) -> Result<bool, Broken> {
            Ok(!self.to_read.is_empty() || self.closed)
        }
    }
    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
            if self.fail_writes {
                return Err(Broken);
            }
            let n = buf.len().min(self.chunk);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), Broken> {
            Ok(())
        }
    }

    fn opened_client() -> MqttClient<4> {
        let mut c = MqttClient::new(
            MqttConfig::default(),
            &DeviceId::new("p-9").unwrap(),
            1,
            7,
            0,
        );
        c.handle_timeout(0);
        assert_eq!(c.poll_event(), Some(MqttEvent::OpenTransport));
        c.handle_transport_open(0);
        c
    }

    fn pipe(chunk: usize) -> Pipe {
        Pipe {
            written: StdVec::new(),
            to_read: VecDeque::new(),
            chunk,
            closed: false,
            fail_writes: false,
        }
    }

    #[test]
    fn partial_writes_send_every_byte_in_order_and_read_bytes_reach_the_client() {
        let mut c = opened_client();
        let connect = c.transmit_buffer().to_vec();
        let mut p = pipe(7);
        p.to_read.extend([0x20, 0x02, 0x00, 0x00]); // CONNACK, accepted
        let activity = service(&mut c, &mut p, 5).unwrap();
        assert_eq!(p.written, connect);
        assert_eq!(activity.bytes_read, 4);
        assert!(c.is_up());
    }

    #[test]
    fn a_closed_stream_ends_the_session_and_the_client_backs_off() {
        let mut c = opened_client();
        let mut p = pipe(64);
        p.closed = true;
        assert_eq!(service(&mut c, &mut p, 5), Err(LinkError::Closed));
        assert!(matches!(c.state(), SessionState::Down { .. }));
    }

    #[test]
    fn a_write_error_ends_the_session() {
        let mut c = opened_client();
        let mut p = pipe(64);
        p.fail_writes = true;
        assert_eq!(service(&mut c, &mut p, 5), Err(LinkError::Io(Broken)));
        assert!(matches!(c.state(), SessionState::Down { .. }));
    }
}
