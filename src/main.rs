//! The `iotmc-gateway` binary.

fn main() -> std::process::ExitCode {
    iotmc_gateway::cli::main()
}
