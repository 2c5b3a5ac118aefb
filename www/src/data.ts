/**
 * The data a user brings: a .npy batch, or images (PNG/JPEG, files or a folder with one subfolder
 * per class) resized and normalized to the model's input; and optional labels.
 */
import { npyF32, npyI32, readNpy } from './npy';

export interface Dataset {
  /** Float32 (or the model's own type) .npy, [N, ...input shape]. */
  x: Uint8Array;
  n: number;
  /** .npy of class indices [N] (or one-hot [N, C]), when known. */
  labels?: Uint8Array;
  /** Class names by index, when the labels came from folder names. */
  classNames?: string[];
  source: string;
}

/** How image pixels become input values: `(p / 255 - mean[c]) / std[c]`. */
export interface Normalization {
  mean: number[];
  std: number[];
  /** Channel order of 3-channel inputs. */
  order: 'rgb' | 'bgr';
}

export const PRESETS: Record<string, { label: string; mean: number[]; std: number[] }> = {
  unit: { label: '[0, 1] (p / 255)', mean: [0], std: [1] },
  signed: { label: '[-1, 1] (p / 127.5 - 1)', mean: [0.5], std: [0.5] },
  raw: { label: '[0, 255] (pixel values)', mean: [0], std: [1 / 255] },
  imagenet: { label: 'ImageNet mean/std', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
};

/** A file with the path it had inside a dropped or chosen folder. */
export interface PathedFile {
  file: File;
  path: string;
}

const IMAGE = /\.(png|jpe?g|gif|bmp|webp)$/i;

export const isImage = (f: PathedFile) => IMAGE.test(f.path) || f.file.type.startsWith('image/');
export const isNpy = (f: PathedFile) => /\.npy$/i.test(f.path);

/** Files of a drop, recursing into folders (their paths keep the folder names). */
export async function droppedFiles(dt: DataTransfer): Promise<PathedFile[]> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return [...dt.files].map((file) => ({ file, path: file.name }));
  const out: PathedFile[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      out.push({ file, path: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const e of entries) await walk(e, '');
  return out;
}

/** Files chosen with an <input type=file> (folder inputs give `webkitRelativePath`). */
export function chosenFiles(list: FileList): PathedFile[] {
  return [...list].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

/** The per-sample input shape [H, W, C] an image batch must have, or why images cannot feed it. */
export function imageShape(inputShape: number[]): [number, number, number] {
  const s = inputShape[0] === 1 ? inputShape.slice(1) : inputShape;
  if (s.length !== 3 || !(s[2] === 1 || s[2] === 3)) {
    throw new Error(`images need a model input of shape [1, H, W, 1 or 3]; this model takes [${inputShape.join(', ')}] (use a .npy batch)`);
  }
  return [s[0], s[1], s[2]];
}

/**
 * Decodes, resizes and normalizes images into a float32 batch. Labels come from the folder each
 * image sits in (one subfolder per class, names sorted), when the images are in at least two.
 */
export async function imagesToDataset(
  files: PathedFile[],
  inputShape: number[],
  norm: Normalization,
  onProgress?: (done: number, total: number) => void,
): Promise<Dataset> {
  const [h, w, c] = imageShape(inputShape);
  const images = files.filter(isImage).sort((a, b) => a.path.localeCompare(b.path));
  if (images.length === 0) throw new Error('no PNG or JPEG images among the files');
  const data = new Float32Array(images.length * h * w * c);
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser cannot decode images in a canvas');
  const mean = (k: number) => norm.mean[k] ?? norm.mean[0];
  const std = (k: number) => norm.std[k] ?? norm.std[0];
  for (const [i, img] of images.entries()) {
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(img.file, { resizeWidth: w, resizeHeight: h, resizeQuality: 'high' });
    } catch {
      throw new Error(`cannot decode image ${img.path}`);
    }
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const px = ctx.getImageData(0, 0, w, h).data;
    const base = i * h * w * c;
    for (let p = 0; p < h * w; p++) {
      const [r, g, b] = [px[p * 4] / 255, px[p * 4 + 1] / 255, px[p * 4 + 2] / 255];
      if (c === 1) {
        data[base + p] = (0.299 * r + 0.587 * g + 0.114 * b - mean(0)) / std(0);
      } else {
        const ch = norm.order === 'rgb' ? [r, g, b] : [b, g, r];
        for (let k = 0; k < 3; k++) data[base + p * 3 + k] = (ch[k] - mean(k)) / std(k);
      }
    }
    onProgress?.(i + 1, images.length);
  }
  const folder = (p: string) => p.split('/').slice(0, -1).pop() ?? '';
  const folders = [...new Set(images.map((f) => folder(f.path)))].sort();
  const labelled = folders.length >= 2 && folders.every((f) => f !== '');
  return {
    x: npyF32([images.length, h, w, c], data),
    n: images.length,
    labels: labelled ? npyI32(images.map((f) => folders.indexOf(folder(f.path)))) : undefined,
    classNames: labelled ? folders : undefined,
    source: `${images.length} images${labelled ? ` in ${folders.length} class folders` : ''}, resized to ${w}×${h}×${c}`,
  };
}

/** A .npy batch, checked against the model's input shape. */
export function npyToDataset(bytes: Uint8Array, name: string, inputShape: number[]): Dataset {
  const v = readNpy(bytes, name);
  const per = inputShape[0] === 1 ? inputShape.slice(1) : inputShape;
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  let n: number;
  if (v.shape.length === per.length + 1 && same(v.shape.slice(1), per)) n = v.shape[0];
  else if (same(v.shape, inputShape) && inputShape[0] === 1) n = 1;
  else {
    throw new Error(`${name} has shape [${v.shape.join(', ')}]; this model needs [N, ${per.join(', ')}]`);
  }
  return { x: bytes, n, source: `${name}: ${n} samples of [${per.join(', ')}] (${v.descr})` };
}

/** Labels from a .npy of class indices [N] or one-hot rows [N, C], checked against the data. */
export function checkLabels(bytes: Uint8Array, name: string, n: number): Uint8Array {
  const v = readNpy(bytes, name);
  if (v.shape[0] !== n || v.shape.length > 2) {
    throw new Error(`${name} has shape [${v.shape.join(', ')}]; labels for ${n} samples are [${n}] class indices or [${n}, classes]`);
  }
  return bytes;
}
