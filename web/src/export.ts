/** Exports for firmware: the model as a C/C++ header. */

/** A C identifier from a file name: `person-detect.tflite` → `person_detect_tflite`. */
export function cIdentifier(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_]/g, '_').replace(/_+/g, '_');
  return /^[A-Za-z_]/.test(id) ? id : `model_${id}`;
}

/**
 * The model as a header for microcontroller firmware (C11 or C++11): a 16-byte aligned
 * `const unsigned char` array, as TensorFlow Lite Micro needs, and its length.
 */
export function toCHeader(bytes: Uint8Array, name = 'model'): string {
  const id = cIdentifier(name);
  const guard = `${id.toUpperCase()}_H_`;
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 12) {
    const row = Array.from(bytes.subarray(i, i + 12), (b) => `0x${b.toString(16).padStart(2, '0')}`);
    lines.push(`  ${row.join(', ')},`);
  }
  return [
    `// ${name}: ${bytes.length} bytes, written by tinyml-optimizer.`,
    '// TensorFlow Lite Micro reads the model in place, so the array is 16-byte aligned.',
    `#ifndef ${guard}`,
    `#define ${guard}`,
    '',
    '#ifndef __cplusplus',
    '#include <stdalign.h>',
    '#endif',
    '',
    `alignas(16) static const unsigned char ${id}[] = {`,
    ...lines,
    '};',
    `static const unsigned int ${id}_len = ${bytes.length};`,
    '',
    `#endif  // ${guard}`,
    '',
  ].join('\n');
}
