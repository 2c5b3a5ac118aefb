// A webpack 5 app: quantize the model at /fixtures/… with a tensor of calibration data.
import { createOptimizer } from '@tinyml/optimizer';
import { quantizeAndCheck } from '../../shared/app.js';

quantizeAndCheck(createOptimizer(), { tensors: true });
