// Compiled (not run) by types.test.mjs against the built declarations: each `@ts-expect-error`
// line must fail to type-check, every other line must pass.
import type { ErrorCode, EvalReport, LoadedModel, ModelSummary, PruneOptions, QuantizeOptions, QuantReport, TflmReport } from '../../dist/node.js';
import { needsData, OptimizerError } from '../../dist/node.js';

declare const model: LoadedModel;
declare const npy: Uint8Array;

// Static quantization (the default mode) needs calibration data; dynamic needs none.
void model.quantize({ calibrationData: npy });
void model.quantize({ mode: 'static', calibrationData: npy, calibration: { method: 'percentile', percentile: 99.9 } });
void model.quantize({ mode: 'dynamic', granularity: 'per-tensor' });
// @ts-expect-error static quantization without calibration data
void model.quantize({});
// @ts-expect-error static quantization without calibration data
void model.quantize({ mode: 'static', biasCorrection: false });
// @ts-expect-error the percentile method needs its percentile
void model.quantize({ calibration: { method: 'percentile' }, calibrationData: npy });
// @ts-expect-error not a calibration method
void model.quantize({ calibration: { method: 'kl' }, calibrationData: npy });

// Gradient pruning needs data; the other methods do not.
void model.prune();
void model.prune({ method: 'layer-magnitude', sparsity: 0.5, structured: true });
void model.prune({ method: 'global-gradient', data: npy, labels: npy });
// @ts-expect-error a gradient method without data
void model.prune({ method: 'layer-gradient', sparsity: 0.5 });
// @ts-expect-error not a pruning method
void model.prune({ method: 'l1-norm' });

// A method chosen at run time narrows with needsData.
declare const method: 'global-magnitude' | 'global-gradient';
const prune: PruneOptions = needsData(method) ? { method, data: npy } : { method };
const quantize: QuantizeOptions = { mode: 'dynamic' };
void [prune, quantize];

// Reports are camelCase: the snake_case keys are gone.
declare const summary: ModelSummary;
declare const report: QuantReport;
declare const evaluation: EvalReport;
declare const tflm: TflmReport;
const figures: number[] = [summary.sizeBytes, summary.parameterBytes, tflm.flashBytes, report.sizeAfter, evaluation.latency.medianMs];
const arena: number | null = tflm.arenaBytes;
// The summary's TFLM report is there only when the full engine loaded the model.
const maybeArena: number | null | undefined = summary.tflm?.arenaBytes;
// @ts-expect-error summary.tflm may be absent (the inference-only core's summary)
void summary.tflm.flashBytes;
const zeroPoints: number[] | undefined = summary.inputs[0].quant?.zeroPoint;
void [figures, arena, maybeArena, zeroPoints];
// @ts-expect-error snake_case key
void summary.size_bytes;
// @ts-expect-error snake_case key
void report.output_sqnr_db;

// Error codes: the core's (generated from Rust) and the JS layer's.
const codes: ErrorCode[] = ['invalid_model', 'resource_limit', 'engine_crashed', new OptimizerError('internal', 'x').code];
void codes;
// @ts-expect-error not an error code
const wrong: ErrorCode = 'invalid_modle';
void wrong;
