//! `gateway [--config FILE]`: runs the media gateway until Ctrl-C or SIGTERM (see
//! `gateway::cli`).

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
