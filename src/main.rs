//! Entry point of the `modewise` program; the command line itself lives in [`cli`].

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
