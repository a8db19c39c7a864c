//! `ntx-embed`: run the node agent's inference core by hand.
//!
//! ```text
//! ntx-embed hash-dir MODEL_DIR                      # print the files' blake2b-256 as spec JSON
//! ntx-embed tiny MODEL_DIR                          # write the deterministic tiny BERT
//! ntx-embed tiny-llama MODEL_DIR                    # write the tiny llama GGUF, print its hash
//! ntx-embed compute MODEL_DIR JOB.json OUT.bin [RUNS]  # provider: write result bytes, print hash
//! ntx-embed verify MODEL_DIR JOB.json RESULT.bin HASH  # verifier: print the verdict
//! ```
//! `JOB.json` is a [`ntx_node_agent::JobSpec`] of either task, e.g.
//! `{"task":"embed","model":{...},"inputs":["a sentence"]}`.
//! `compute` and `verify` print their timing and device to stderr; `compute … RUNS`
//! repeats the job (the first run includes loading the model) and, for `generate`,
//! reports tokens per second after the prefill. The device is the one
//! [`ntx_node_agent::select_device`] picks (`NTX_DEVICE=cpu` forces the CPU in a `cuda`
//! build). Exit status: 0 done / Accept, 1 Reject, 2 error.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use ntx_node_agent::{
    BertFiles, Engine, Hash32, JobSpec, Progress, TinyBert, TinyLlama, Verdict, describe_device,
    write_tiny_bert, write_tiny_llama,
};

fn usage() -> ExitCode {
    eprintln!(
        "usage: ntx-embed hash-dir DIR | tiny DIR | tiny-llama DIR | \
         compute DIR JOB.json OUT.bin [RUNS] | verify DIR JOB.json RESULT.bin HASH"
    );
    ExitCode::from(2)
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let read_job = |path: &str| -> Result<JobSpec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
        JobSpec::from_json(&text).map_err(|e| e.to_string())
    };
    let print_files = |files: &BertFiles| -> Result<(), String> {
        println!(
            "{}",
            serde_json::to_string_pretty(files).map_err(|e| e.to_string())?
        );
        Ok(())
    };
    match args {
        [cmd, dir] if cmd == "hash-dir" => {
            print_files(&BertFiles::of_dir(Path::new(dir)).map_err(|e| e.to_string())?)?;
            Ok(ExitCode::SUCCESS)
        }
        [cmd, dir] if cmd == "tiny" => {
            let files =
                write_tiny_bert(Path::new(dir), &TinyBert::default()).map_err(|e| e.to_string())?;
            print_files(&files)?;
            Ok(ExitCode::SUCCESS)
        }
        [cmd, dir] if cmd == "tiny-llama" => {
            let hash = write_tiny_llama(Path::new(dir), &TinyLlama::default())
                .map_err(|e| e.to_string())?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
        [cmd, dir, job, out, rest @ ..] if cmd == "compute" && rest.len() <= 1 => {
            let runs: u32 = match rest {
                [n] => n
                    .parse()
                    .map_err(|_| format!("RUNS must be a count, got {n:?}"))?,
                _ => 1,
            };
            let job = read_job(job)?;
            let engine = Engine::on_selected_device().map_err(|e| e.to_string())?;
            let device = describe_device(engine.device());
            let mut last = None;
            for run in 1..=runs.max(1) {
                let started = Instant::now();
                let mut timing = RunTiming::default();
                let result = engine
                    .compute_with_progress(&job, Path::new(dir), &mut |p| timing.saw(p))
                    .map_err(|e| e.to_string())?;
                eprintln!("run {run} on {device}: {}", timing.report(started));
                last = Some(result);
            }
            let result = last.expect("at least one run");
            std::fs::write(out, &result.bytes).map_err(|e| format!("writing {out}: {e}"))?;
            println!("{}", result.hash);
            Ok(ExitCode::SUCCESS)
        }
        [cmd, dir, job, result, hash] if cmd == "verify" => {
            let job = read_job(job)?;
            let bytes = std::fs::read(result).map_err(|e| format!("reading {result}: {e}"))?;
            let hash: Hash32 = hash.parse().map_err(|e| format!("{e}"))?;
            let engine = Engine::on_selected_device().map_err(|e| e.to_string())?;
            let started = Instant::now();
            let verdict = engine
                .verify(&job, Path::new(dir), &bytes, &hash)
                .map_err(|e| e.to_string())?;
            eprintln!(
                "verified on {} in {:.0} ms (loading the model included)",
                describe_device(engine.device()),
                started.elapsed().as_secs_f64() * 1e3
            );
            match verdict {
                Verdict::Accept(why) => {
                    println!("accept: {why:?}");
                    Ok(ExitCode::SUCCESS)
                }
                Verdict::Reject(why) => {
                    println!("reject: {why}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        _ => Ok(usage()),
    }
}

/// When a run's first progress report (the prefill, for `generate`) and its last came.
#[derive(Default)]
struct RunTiming {
    first: Option<(Instant, u64)>,
    last: Option<(Instant, Progress)>,
}

impl RunTiming {
    fn saw(&mut self, p: Progress) {
        let now = Instant::now();
        self.first.get_or_insert((now, p.done));
        self.last = Some((now, p));
    }

    fn report(&self, started: Instant) -> String {
        let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1e3;
        let total = ms(started, Instant::now());
        match (self.first, self.last) {
            (Some((t0, d0)), Some((t1, p))) if p.done > d0 => {
                let steps = p.done - d0;
                let decode = ms(t0, t1);
                format!(
                    "{total:.0} ms in all; {} {} ({steps} after the first report at {:.0} ms) \
                     in {decode:.0} ms = {:.1} {}/s",
                    p.done,
                    p.unit,
                    ms(started, t0),
                    steps as f64 / (decode / 1e3),
                    p.unit
                )
            }
            _ => format!("{total:.0} ms in all"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ntx-embed: {e}");
            ExitCode::from(2)
        }
    }
}
