#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lvsnap::cli::main()
}
