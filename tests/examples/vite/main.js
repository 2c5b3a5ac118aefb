// A Vite app: quantize the model at /fixtures/… with .npy calibration bytes, check the result.
import { createOptimizer } from '@tinyml/optimizer';
import { quantizeAndCheck } from '../shared/app.js';

quantizeAndCheck(createOptimizer(), { tensors: false });
