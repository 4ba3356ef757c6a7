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
