//! The retina RTSP client's start-up, written once: SETUP every stream of a described session
//! over one transport, PLAY, and demux into frames.

use retina::client::{Demuxed, Described, PlayOptions, Session, SetupOptions, Transport};

/// SETUP each of `session`'s streams with `transport`, then PLAY; panics (the test fails) if the
/// gateway refuses any step.
pub async fn setup_all_and_play(mut session: Session<Described>, transport: Transport) -> Demuxed {
    for i in 0..session.streams().len() {
        session
            .setup(i, SetupOptions::default().transport(transport.clone()))
            .await
            .expect("SETUP succeeds");
    }
    session
        .play(PlayOptions::default())
        .await
        .expect("PLAY succeeds")
        .demuxed()
        .expect("demuxable")
}
