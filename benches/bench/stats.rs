//! Percentiles and the small printing helpers every scenario shares.

use std::time::Duration;

pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Summary {
        n: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().expect("at least one sample"),
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn row(label: &str, s: &Summary) {
    println!(
        "| {label:<44} | {:>6} | {:>10} | {:>10} | {:>10} |",
        s.n,
        us(s.p50),
        us(s.p99),
        us(s.max)
    );
}

pub fn header(title: &str) {
    println!("\n### {title}\n");
    println!(
        "| {:<44} | {:>6} | {:>10} | {:>10} | {:>10} |",
        "case", "n", "p50", "p99", "max"
    );
    println!(
        "|{:-<46}|{:->8}|{:->12}|{:->12}|{:->12}|",
        "", "", "", "", ""
    );
}
