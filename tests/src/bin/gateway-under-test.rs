//! The `gateway` binary's code (`gateway::cli::main`) built inside this package, so that the
//! end-to-end tests that run the gateway as a process (its log output, its command line) find
//! it as `CARGO_BIN_EXE_gateway-under-test`, built from the same sources as the test itself.

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
