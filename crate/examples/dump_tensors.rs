//! Developer tool: runs a model on one .npy sample and writes every tensor's value to a folder
//! (`<index>.npy`), for locating the first operator where two engines disagree.
//!   cargo run --release --example dump_tensors -- MODEL.tflite X.npy OUT_DIR
use tinyml_optimizer::exec::{Buffer, Interpreter};
use tinyml_optimizer::npy::{self, NpyArray, NpyData};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: dump_tensors MODEL.tflite X.npy OUT_DIR");
        std::process::exit(1);
    }
    let model = tinyml_optimizer::tflite::read(&std::fs::read(&args[1]).unwrap()).unwrap();
    let x = npy::read(&std::fs::read(&args[2]).unwrap()).unwrap();
    let mut it = Interpreter::new(&model).unwrap();
    let buf = match x.data {
        NpyData::I8(v) => Buffer::I8(v),
        NpyData::U8(v) => Buffer::U8(v),
        _ => Buffer::F32(x.to_f32()),
    };
    it.set_input(0, buf).unwrap();
    it.invoke().unwrap();
    std::fs::create_dir_all(&args[3]).unwrap();
    for t in 0..model.main().tensors.len() {
        let Some(info) = it.tensor_info(t) else { continue };
        let data = match it.tensor(t).unwrap() {
            Buffer::F32(v) => NpyData::F32(v.clone()),
            Buffer::I8(v) => NpyData::I8(v.clone()),
            Buffer::U8(v) => NpyData::U8(v.clone()),
            Buffer::I32(v) => NpyData::I32(v.clone()),
            Buffer::I64(v) => NpyData::I64(v.clone()),
            _ => continue,
        };
        if let Ok(a) = NpyArray::new(info.shape.clone(), data) {
            std::fs::write(format!("{}/{t}.npy", args[3]), npy::write(&a)).unwrap();
        }
    }
}
