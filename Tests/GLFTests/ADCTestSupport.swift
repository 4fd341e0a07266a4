// Small constructions the ADC tests share (the gradient check itself is GLFDTesting's).
import Foundation
import Neural

func adcCopy(_ t: Tensor) -> Tensor {
    let c = Tensor(zeros: t.shape)
    c.copy(from: t)
    return c
}

/// Points on the unit circle at the given angles: [count, 2].
func adcCircle(_ angles: [Float]) -> Tensor {
    Tensor(shape: [angles.count, 2], values: angles.flatMap { [cos($0), sin($0)] })
}
