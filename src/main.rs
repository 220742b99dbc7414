//! seatgate's entry point: parse the command line, load the configuration, start logging,
//! run the command, and map failures to exit codes (0 ok, 1 runtime failure, 2 usage or
//! configuration error) with one sentence on stderr.

use clap::{CommandFactory, FromArgMatches};

fn main() {
    // `--version` (long form) adds the build facts and the linked C libraries' versions;
    // clap wants a 'static string, and this one is made once per process.
    let long_version: &'static str =
        Box::leak(seatgate::buildinfo::long_version().into_boxed_str());
    let parsed = seatgate::cli::Cli::command()
        .long_version(long_version)
        .try_get_matches()
        .and_then(|matches| seatgate::cli::Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let (config, warnings) = match seatgate::cli::load_config(&cli) {
        Ok(loaded) => loaded,
        Err(e) => fail(&e),
    };
    seatgate::logging::init(&config.log_level);
    for w in warnings {
        log::warn!("{w}");
    }
    if let Err(e) = seatgate::cli::run(cli, config) {
        fail(&e);
    }
}

fn fail(e: &seatgate::cli::CliError) -> ! {
    eprintln!("seatgate: error: {e}");
    std::process::exit(e.exit_code());
}
