// Reference outputs of an nsfwjs model under @tensorflow/tfjs (CPU backend), for the parity
// tests in tests/unit/test_model_nsfwjs_parity.py. Test-only: the product never runs node.
//
// usage: node nsfwjs_tfjs.js MODEL_DIR INPUT.bin COUNT SIZE OUTPUT.bin
//   MODEL_DIR  a directory holding nsfwjs's model.min.js and group1-shard*.min.js, as the
//              package ships them; they are loaded with require(), the way nsfwjs loads them.
//   INPUT.bin  COUNT x SIZE x SIZE x 3 float32 (little-endian) NHWC, already RGB / 255.
//   OUTPUT.bin written: COUNT x 5 float32 softmax outputs.
// tfjs is found through NODE_PATH (the test installs it into a cache directory).
"use strict";

const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");

function loadArtifacts(modelDir) {
  const model = require(path.resolve(modelDir, "model.min.js"));
  const weightSpecs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    for (const shard of group.paths) {
      const text = require(path.resolve(modelDir, shard + ".min.js"));
      buffers.push(Buffer.from(text, "base64"));
    }
    weightSpecs.push(...group.weights);
  }
  const joined = Buffer.concat(buffers);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.length);
  return {
    format: model.format,
    artifacts: {
      modelTopology: model.modelTopology,
      format: model.format,
      generatedBy: model.generatedBy,
      convertedBy: model.convertedBy,
      userDefinedMetadata: model.userDefinedMetadata,
      weightSpecs,
      weightData,
    },
  };
}

async function main() {
  const [modelDir, inputPath, countArg, sizeArg, outputPath] = process.argv.slice(2);
  const count = Number(countArg);
  const size = Number(sizeArg);
  await tf.setBackend("cpu");
  const { format, artifacts } = loadArtifacts(modelDir);
  const handler = { load: async () => artifacts };
  const model = format === "graph-model"
    ? await tf.loadGraphModel(handler)
    : await tf.loadLayersModel(handler);
  const raw = fs.readFileSync(inputPath);
  const pixels = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  if (pixels.length !== count * size * size * 3) {
    throw new Error(`input has ${pixels.length} floats, expected ${count}x${size}x${size}x3`);
  }
  const input = tf.tensor4d(pixels, [count, size, size, 3]);
  const output = model.predict(input);
  const values = await output.data();
  fs.writeFileSync(outputPath, Buffer.from(new Float32Array(values).buffer));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
