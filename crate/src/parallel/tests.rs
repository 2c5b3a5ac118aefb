//! Results do not depend on the number of workers: every job run with one thread and with three
//! gives identical bytes.

#[cfg(not(target_arch = "wasm32"))]
use super::run;
use crate::npy;
#[cfg(not(target_arch = "wasm32"))]
use crate::quantize::{quantize_job, QuantizeOptions};

fn fixture(path: &str) -> Vec<u8> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");
    std::fs::read(format!("{root}{path}")).expect("fixture")
}

#[test]
#[cfg(not(target_arch = "wasm32"))]
fn quantization_is_identical_on_one_and_three_threads() {
    for model in ["cnn/model_float.tflite", "dwcnn/model_float.tflite", "mlp/model_float.tflite"] {
        quantization_is_identical_on_one_and_three_threads_for(model);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn quantization_is_identical_on_one_and_three_threads_for(model: &str) {
    let m = crate::tflite::read(&fixture(model)).unwrap();
    let data = npy::read(&fixture("data/patterns_calib.npy")).unwrap();
    let opts = QuantizeOptions::default();
    let mut outs = Vec::new();
    for threads in [1, 3] {
        let mut job = quantize_job(&m, &data, &opts).unwrap();
        run(&mut job, threads, &mut |_, _, _| {}).unwrap();
        let (q, r) = job.finish().unwrap();
        outs.push((
            crate::tflite::write(&q).unwrap(),
            r.output_sqnr_db.clone(),
            r.layers.iter().map(|l| l.sqnr_db).collect::<Vec<_>>(),
        ));
    }
    assert!(outs[0].0 == outs[1].0, "{model}: quantized models differ between 1 and 3 threads");
    assert_eq!(outs[0].1, outs[1].1);
    assert_eq!(outs[0].2, outs[1].2);
}

#[test]
#[cfg(not(target_arch = "wasm32"))]
fn runs_and_gradients_are_identical_on_one_and_three_threads() {
    let m = crate::tflite::read(&fixture("resnet/model_float.tflite")).unwrap();
    let x = npy::read(&fixture("data/patterns_test_x.npy")).unwrap();
    let x = npy::NpyArray::new([&[100], &x.shape[1..]].concat(), npy::NpyData::F32(x.to_f32()[..100 * 256].to_vec()))
        .unwrap();
    let mut runs = Vec::new();
    for threads in [1, 3] {
        let mut job = crate::exec::RunJob::new(std::sync::Arc::new(m.clone()), &x, false, false).unwrap();
        run(&mut job, threads, &mut |_, _, _| {}).unwrap();
        runs.push(job.finish().unwrap());
    }
    assert_eq!(runs[0], runs[1]);
    // Batched runs give what one sample at a time gives.
    let mut it = crate::exec::Interpreter::new(&m).unwrap();
    let one = crate::exec::run_batch(&mut it, &x, false, |_, _| {}).unwrap();
    assert_eq!(one, runs[0]);
    let mut grads = Vec::new();
    for threads in [1, 3] {
        let mut job = crate::grad::GradientsJob::new(&m, &x.to_f32(), &x.shape, None).unwrap();
        run(&mut job, threads, &mut |_, _, _| {}).unwrap();
        let g = job.finish().unwrap();
        grads.push((g.loss, g.weights));
    }
    assert_eq!(grads[0], grads[1]);
}

#[test]
#[cfg(not(target_arch = "wasm32"))]
fn evaluation_is_identical_on_one_and_three_threads_and_times_both_models() {
    let q = crate::tflite::read(&fixture("cnn/model_int8_tf.tflite")).unwrap();
    let f = crate::tflite::read(&fixture("cnn/model_float.tflite")).unwrap();
    let x = npy::read(&fixture("data/patterns_test_x.npy")).unwrap();
    let y = npy::read(&fixture("data/patterns_test_y.npy")).unwrap();
    let mut figures = Vec::new();
    for threads in [1, 3] {
        let mut job = crate::evaluate::EvaluateJob::new(&q, 1, &x, Some(&y), Some((&f, 1))).unwrap();
        run(&mut job, threads, &mut |_, _, _| {}).unwrap();
        let r = job.finish().unwrap();
        let reference = r.reference.unwrap();
        // Each model's latency comes from its own timing task.
        assert!(r.latency.min_ms > 0.0 && reference.latency.min_ms > 0.0, "{threads} threads");
        figures.push((r.accuracy, reference.top1_agreement, reference.output_sqnr_db, reference.accuracy));
    }
    assert_eq!(figures[0], figures[1]);
    assert!(figures[0].0.is_some_and(|a| a > 0.9), "{:?}", figures[0]);
}

/// A worker keeps one parameter store per model for every batch size; values inferred from
/// shapes (a RESHAPE target computed from the batch) differ between batch sizes, so a batch-1
/// engine after a batched one must not reuse the batched store's.
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn a_batch_1_engine_after_a_batched_one_runs_each_sample_alone() {
    use super::Samples;
    use super::{Resource, Worker};
    let bytes = fixture("lstm/model_int8_tf.tflite");
    let x = npy::read(&fixture("lstm/inputs.npy")).unwrap().to_f32();
    let mut w = Worker::default();
    w.put(0, Resource::Bytes(bytes.into()));
    let rows = 4;
    let per = x.len() / npy::read(&fixture("lstm/inputs.npy")).unwrap().shape[0];
    let mut batched = Vec::new();
    w.forward_input(0, Samples::F32(&x[..rows * per]), per, |it, _, _| {
        batched = it.output_f32(0).unwrap();
        Ok(())
    })
    .unwrap();
    let mut alone = Vec::new();
    w.forward_input(0, Samples::F32(&x[..per]), per, |it, _, _| {
        alone = it.output_f32(0).unwrap();
        Ok(())
    })
    .unwrap();
    assert_eq!(alone[..], batched[..alone.len()], "sample 0 alone and in a batch of {rows}");
}

/// A worker decodes only the rows a task asks for, with the values a whole read gives, for every
/// element type; rows outside the array (or reversed) are refused, not read past its end.
#[test]
fn a_worker_decodes_rows_of_an_array_as_a_whole_read_does() {
    use super::{Resource, Worker};
    use npy::{NpyArray, NpyData};
    use std::sync::Arc;
    let arrays = [
        NpyData::F32((0..24).map(|i| i as f32 * 0.5 - 3.0).collect()),
        NpyData::F64((0..24).map(|i| i as f64 * 1e30).collect()),
        NpyData::I8((0..24).map(|i| i as i8 - 12).collect()),
        NpyData::U8((0..24).map(|i| 250 - i as u8).collect()),
        NpyData::I32((0..24).map(|i| i * 1000 - 7).collect()),
        NpyData::I64((0..24).map(|i| (i as i64) << 40).collect()),
    ];
    for data in arrays {
        let bytes = npy::write(&NpyArray::new(vec![4, 2, 3], data.clone()).unwrap());
        let mut w = Worker::default();
        w.put(7, Resource::Bytes(Arc::new(bytes)));
        let whole = data.to_f32();
        for rows in [(0, 4), (1, 3), (3, 4), (2, 2)] {
            let got = w.rows(7, 6, rows).unwrap();
            assert_eq!(got.descr(), data.descr());
            assert_eq!(got.to_f32(), whole[rows.0 * 6..rows.1 * 6], "{} rows {rows:?}", data.type_name());
            assert_eq!(w.float_rows(7, 6, rows).unwrap(), whole[rows.0 * 6..rows.1 * 6]);
        }
        for rows in [(0, 5), (3, 2), (usize::MAX, usize::MAX)] {
            let e = w.rows(7, 6, rows).unwrap_err().to_string();
            assert!(e.contains("too few values"), "{rows:?}: {e}");
        }
    }
}

/// A worker keeps its interpreters between tasks; the recurrent state of a reused one starts from
/// zero again, so running the same samples again gives the same outputs (batched and one by one).
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn a_worker_reuses_interpreters_without_carrying_state() {
    use super::Samples;
    use super::{Resource, Worker};
    let bytes = fixture("lstm/model_int8_tf.tflite");
    let data = npy::read(&fixture("lstm/inputs.npy")).unwrap();
    let x = data.to_f32();
    let per = x.len() / data.shape[0];
    let mut w = Worker::default();
    w.put(0, Resource::Bytes(bytes.into()));
    let outputs = |w: &mut Worker, rows: (usize, usize)| {
        let mut out = Vec::new();
        w.forward_input(0, Samples::F32(&x[rows.0 * per..rows.1 * per]), per, |it, _, _| {
            out.extend(it.output_f32(0).unwrap());
            Ok(())
        })
        .unwrap();
        out
    };
    for rows in [4, 1] {
        let first = outputs(&mut w, (0, rows));
        let other = outputs(&mut w, (rows, 2 * rows));
        assert_ne!(first, other, "different samples give different outputs");
        assert_eq!(outputs(&mut w, (0, rows)), first, "{rows} row(s) again on a reused interpreter");
        let mut fresh = Worker::default();
        fresh.put(0, Resource::Bytes(fixture("lstm/model_int8_tf.tflite").into()));
        assert_eq!(outputs(&mut fresh, (0, rows)), first, "{rows} row(s) on a new worker");
    }
}

/// Calibration data is checked by the calibration tasks: the job reports the first value that is
/// not finite in sample order, whichever task found one first.
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn the_first_non_finite_calibration_value_is_reported_on_any_number_of_threads() {
    let m = crate::tflite::read(&fixture("cnn/model_float.tflite")).unwrap();
    let data = npy::read(&fixture("data/patterns_calib.npy")).unwrap();
    let per = data.to_f32().len() / data.shape[0];
    let mut v = data.to_f32();
    v[90 * per + 3] = f32::INFINITY;
    v[37 * per + 11] = f32::NAN;
    let bad = npy::NpyArray::new(data.shape.clone(), npy::NpyData::F32(v)).unwrap();
    for threads in [1, 3] {
        let mut job = quantize_job(&m, &bad, &QuantizeOptions::default()).unwrap();
        let e = run(&mut job, threads, &mut |_, _, _| {}).unwrap_err();
        assert_eq!(e.code(), crate::error::ErrorCode::InvalidInput);
        assert!(e.to_string().contains("holds NaN at sample 37, element 11"), "{threads} threads: {e}");
    }
}

/// A model resource's bytes are written once, and are the model's `.tflite` file.
#[test]
fn a_written_resource_is_written_once() {
    use super::Resource;
    let m = std::sync::Arc::new(crate::tflite::read(&fixture("mlp/model_float.tflite")).unwrap());
    let r = Resource::written(m.clone(), None);
    let (a, b) = (r.to_bytes().unwrap(), r.clone().to_bytes().unwrap());
    assert!(std::sync::Arc::ptr_eq(&a, &b), "written twice");
    assert_eq!(*a, crate::tflite::write(&m).unwrap());
    let given = Resource::written(m, Some(vec![1, 2, 3]));
    assert_eq!(*given.to_bytes().unwrap(), vec![1, 2, 3], "the bytes given are the written form");
}

#[test]
fn heavy_tasks_are_dealt_to_both_ends_and_results_come_back_in_job_order() {
    use super::deal;
    let mut weights = vec![32; 4];
    weights.extend([16; 8]);
    weights.push(8);
    assert_eq!(deal(&weights), vec![0, 2, 4, 6, 8, 10, 12, 11, 9, 7, 5, 3, 1]);
    assert_eq!(deal(&[2, 2, 2, 1]), vec![0, 2, 3, 1]);
    assert_eq!(deal(&[1, 1, 1]), vec![0, 2, 1]);
    assert_eq!(deal(&[1, 5, 3]), vec![1, 0, 2], "the heaviest first, the lightest in the middle");
    assert_eq!(deal(&[2, 2]), vec![0, 1]);
    assert!(deal(&[]).is_empty());
    let order = deal(&[3, 3, 3, 3, 1, 1, 1]);
    let sent: Vec<Vec<u8>> = order.iter().map(|&k| vec![k as u8]).collect();
    let back = super::in_job_order(sent, &order).unwrap();
    assert_eq!(back, (0..7u8).map(|k| vec![k]).collect::<Vec<_>>());
    assert!(super::in_job_order(vec![vec![0]], &order).is_err(), "a missing result is an error");
}
