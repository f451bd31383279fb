"""lhama's own image towers (not Hugging Face models) behind the tower interface of
:mod:`lhama.model.encoders`: ``resnet`` (architecture, config, directory format) and
``open_nsfw`` (porting the open-NSFW ONNX weights onto it)."""
