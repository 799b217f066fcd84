"""msgspec Structs for everything that crosses a boundary: the OpenAI wire format, the model
catalog, and the objects plugins exchange with the kernel."""
