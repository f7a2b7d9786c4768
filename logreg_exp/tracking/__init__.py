"""Where results go: TensorBoard, the console, pictures."""
