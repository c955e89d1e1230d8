//! Benchmark helper: fits rfm-agent's k-means on a raw little-endian f64 matrix and prints
//! the in-process fit time as JSON. Used by bench/bench.py against scikit-learn on the same
//! file. Usage: kmeans_bench FILE N_FEATURES (--k K | --sweep FROM TO) [--n-init N] [--seed S]

use std::time::Instant;

use linfa::prelude::*;
use ndarray::Array2;
use rfm_agent::cluster::KMeansParams;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: kmeans_bench FILE N_FEATURES (--k K | --sweep FROM TO) [--n-init N] [--seed S]";
    let file = args.get(1).ok_or(usage)?;
    let d: usize = args.get(2).ok_or(usage)?.parse()?;
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let n_init: usize = flag("--n-init").map_or(Ok(10), |v| v.parse())?;
    let seed: u64 = flag("--seed").map_or(Ok(0), |v| v.parse())?;
    let ks: Vec<usize> = if let Some(k) = flag("--k") {
        vec![k.parse()?]
    } else if let Some(from) = flag("--sweep") {
        let i = args.iter().position(|a| a == "--sweep").unwrap();
        (from.parse()?..=args[i + 2].parse()?).collect()
    } else {
        return Err(usage.into());
    };
    let bytes = std::fs::read(file)?;
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let n = values.len() / d;
    let data = DatasetBase::from(Array2::from_shape_vec((n, d), values)?);
    let started = Instant::now();
    let mut inertias = Vec::new();
    for &k in &ks {
        let model = KMeansParams::new(k).n_init(n_init).seed(seed).fit(&data)?;
        inertias.push(model.inertia());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"n\": {n}, \"ks\": {ks:?}, \"seconds\": {seconds:.4}, \"inertia\": {inertias:?}}}"
    );
    Ok(())
}
