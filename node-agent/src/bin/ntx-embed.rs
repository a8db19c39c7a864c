//! `ntx-embed`: run the node agent's inference core by hand.
//!
//! ```text
//! ntx-embed hash-dir MODEL_DIR                      # print the files' blake2b-256 as spec JSON
//! ntx-embed tiny MODEL_DIR                          # write the deterministic tiny BERT
//! ntx-embed compute MODEL_DIR JOB.json OUT.bin      # provider: write result bytes, print hash
//! ntx-embed verify MODEL_DIR JOB.json RESULT.bin HASH  # verifier: print the verdict
//! ```
//! `JOB.json` is a [`ntx_node_agent::JobSpec`], e.g.
//! `{"task":"embed","model":{...},"inputs":["a sentence"]}`.
//! Exit status: 0 done / Accept, 1 Reject, 2 error.

use std::path::Path;
use std::process::ExitCode;

use ntx_node_agent::{BertFiles, Engine, Hash32, JobSpec, TinyBert, Verdict, write_tiny_bert};

fn usage() -> ExitCode {
    eprintln!(
        "usage: ntx-embed hash-dir DIR | tiny DIR | compute DIR JOB.json OUT.bin | \
         verify DIR JOB.json RESULT.bin HASH"
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
        [cmd, dir, job, out] if cmd == "compute" => {
            let job = read_job(job)?;
            let engine = Engine::on_selected_device().map_err(|e| e.to_string())?;
            let result = engine
                .compute(&job, Path::new(dir))
                .map_err(|e| e.to_string())?;
            std::fs::write(out, &result.bytes).map_err(|e| format!("writing {out}: {e}"))?;
            println!("{}", result.hash);
            Ok(ExitCode::SUCCESS)
        }
        [cmd, dir, job, result, hash] if cmd == "verify" => {
            let job = read_job(job)?;
            let bytes = std::fs::read(result).map_err(|e| format!("reading {result}: {e}"))?;
            let hash: Hash32 = hash.parse().map_err(|e| format!("{e}"))?;
            let engine = Engine::on_selected_device().map_err(|e| e.to_string())?;
            match engine
                .verify(&job, Path::new(dir), &bytes, &hash)
                .map_err(|e| e.to_string())?
            {
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
