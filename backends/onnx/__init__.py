"""ONNX: the fixed-point program exported as one ONNX time step, and run by onnxruntime."""
