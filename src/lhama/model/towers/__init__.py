"""lhama's own image towers (not Hugging Face models) behind the tower interface of
:mod:`lhama.model.encoders`: ``resnet`` (the open-NSFW ResNet-50 layout), ``efficientnet_lite``
(EfficientNet-Lite2 with its ImageNet-1k head) and ``imagenet_names`` (the head's 1000 classes
in pt-BR). The weight ports live in :mod:`lhama.weights`."""
