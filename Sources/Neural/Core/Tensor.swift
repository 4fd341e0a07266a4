// Tensor: a Float32 buffer with a shape, row-major.
//
// Images are NHWC ([batch, height, width, channels]): channels are the innermost dimension, so a
// 1×1 convolution is one sgemm over [N·H·W, C], a 3×3 convolution is one sgemm after gathering
// patches, and batch norm reduces over rows of a [rows, C] matrix whatever the rank.
//
// A tensor either owns its memory (activations, gradients: allocated once and reused across steps
// with the same shape) or views memory owned by someone else (parameters view the arena). It is a
// class so that hot loops can hold raw pointers without copy-on-write.
import Foundation

public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public private(set) var data: UnsafeMutablePointer<Float>
    public private(set) var count: Int
    private var capacity: Int
    private let ownsMemory: Bool

    /// A zero-filled tensor that owns its memory.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.capacity = max(count, 1)
        self.data = .allocate(capacity: capacity)
        self.data.initialize(repeating: 0, count: capacity)
        self.ownsMemory = true
        NeuralMemory.allocated(floats: capacity)
    }

    /// A tensor that owns a copy of `values`.
    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A view of memory owned elsewhere (the parameter arena); it must outlive the view.
    public init(viewing data: UnsafeMutablePointer<Float>, shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.capacity = count
        self.data = data
        self.ownsMemory = false
    }

    deinit {
        guard ownsMemory else { return }
        data.deallocate()
        NeuralMemory.released(floats: capacity)
    }

    /// Gives the tensor a new shape, reallocating only when it needs more room. Contents are
    /// unspecified afterwards: layers call this on their outputs before overwriting them.
    public func reshape(to newShape: [Int]) {
        let newCount = newShape.reduce(1, *)
        if newCount > capacity {
            precondition(ownsMemory, "a view cannot grow")
            data.deallocate()
            NeuralMemory.released(floats: capacity)
            capacity = newCount
            data = .allocate(capacity: capacity)
            NeuralMemory.allocated(floats: capacity)
            data.initialize(repeating: 0, count: capacity)
        }
        shape = newShape
        count = newCount
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func copy(from other: Tensor) {
        precondition(count == other.count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public subscript(index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    /// Size of the last dimension (channels in NHWC, features in [N, D]).
    public var lastDimension: Int { shape.last ?? 1 }
    /// Number of rows when the tensor is seen as a [rows, lastDimension] matrix.
    public var rows: Int { count / max(lastDimension, 1) }
}
