// Imaging: turning bytes a client sent into pixels the model can use — JPEG (libturbojpeg), PNG
// (libpng) and raw pixels, converted to RGB or gray and resized to the model's canonical size,
// with limits checked before any pixel is decoded.
