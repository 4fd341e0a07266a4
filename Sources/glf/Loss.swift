// glf loss: one evaluation of a method's loss parts on your own numbers, with the gradients
// written back, so that anyone can check our losses against their code. It runs the same parts
// (and, for SwAV, the same prototype head) that training runs.
import ArgumentParser
import Foundation
import GLF
import Neural

struct Loss: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a method's loss on .npy inputs and write each input's gradient as .npy.",
        discussion: """
            Inputs (float32 or float64 .npy, C order) in --dir; rows are view 1's B samples, then view 2's:
              z.npy            [2B, D]  projections (every method)
              p.npy            [2B, D]  BYOL: the predictor's outputs
              t.npy            [2B, D]  BYOL: the target network's projections (no gradient)
              prototypes.npy   [K, D]   SwAV: prototypes, used as given (scores = (z/‖z‖)·prototypesᵀ)
              u.npy            [B, P]   with --adc: the input-space prior for LPM (optional; without it only DCM)
            Outputs in --dir (float32):
              grad_z.npy                dL/dz
              grad_p.npy                BYOL: dL/dp
              grad_prototypes.npy       SwAV: dL/dprototypes
            The loss is the sum of the method's terms (each printed, unweighted and weighted) with the
            method's default constants (solo-learn's CIFAR recipes) and, with --adc, ADC's defaults or
            the --adc-* settings given. ADC's terms also print their gradient share: the norm of the
            term's weighted dL/dz over the norm of the method's dL/dz (for BYOL the method's gradient
            is on p, so its dL/dz is 0 here and no share is printed).
            """)

    @Argument(help: "The method.") var method: MethodName
    @Option(help: "Directory with the inputs; the gradients are written there too.") var dir: String
    @Flag(help: "Add ADC's DCM and LPM terms.") var adc = false
    @OptionGroup var calibration: ADCOptions

    func run() throws {
        let name = method
        let directory = URL(fileURLWithPath: dir)
        func read(_ file: String) throws -> Tensor {
            let array = try NumpyFile.read(from: directory.appendingPathComponent(file))
            return Tensor(shape: array.shape, values: array.values)
        }
        func write(_ tensor: Tensor, _ file: String) throws { try NumpyFile.write(tensor, to: directory.appendingPathComponent(file)) }

        let z = try read("z.npy")
        guard z.shape.count == 2, z.shape[0] % 2 == 0, z.shape[0] >= 4 else {
            throw ValidationError("z.npy must be [2B, D] with B ≥ 2, got \(z.shape)")
        }
        var config = TrainingConfig()
        config.method = name
        let method = config.methodValue
        let calibrationParts = adc ? [WeightedPart(ADCPart(try calibration.calibration()))] : []
        let tensors = StepTensors(batch: z.shape[0] / 2)
        tensors.begin(projections: z)
        if name == .byol {
            let (p, t) = (try read("p.npy"), try read("t.npy"))
            guard p.shape == z.shape, t.shape == z.shape else { throw ValidationError("p.npy and t.npy must have z.npy's shape \(z.shape)") }
            (tensors.predictions, tensors.targets) = (p, t)
        }
        var prototypes: Prototypes?
        if name == .swav {
            let c = try read("prototypes.npy")
            guard c.shape.count == 2, c.shape[1] == z.shape[1] else { throw ValidationError("prototypes.npy must be [K, \(z.shape[1])], got \(c.shape)") }
            let arena = ParameterArena()
            var rng = SeededGenerator(seed: 0)
            let head = Prototypes("prototypes", in: arena, dimension: c.shape[1], count: c.shape[0], rng: &rng)
            arena.seal()
            head.linear.weight.values.update(from: c.data, count: c.count)
            tensors.scores = head.forward(tensors.unitProjections, mode: .training)
            prototypes = head
        }
        if adc, FileManager.default.fileExists(atPath: directory.appendingPathComponent("u.npy").path) {
            tensors.prior = try read("u.npy")
        }

        // The trainer's order: the method's parts and heads, its dL/dz measured, then ADC.
        tensors.resetGradients()
        var total = applyParts(method.parts, to: tensors)
        if let prototypes {
            let dUnit = prototypes.backward(tensors.scoreGradient)
            BLAS.axpy(count: dUnit.count, alpha: 1, x: dUnit.data, y: tensors.unitProjectionGradient.data)
            try write(prototypes.linear.weight.gradientTensor, "grad_prototypes.npy")
        }
        tensors.foldUnitGradient()
        let methodNorm = BLAS.norm(count: tensors.projectionGradient.count, tensors.projectionGradient.data)
        total += applyParts(calibrationParts, to: tensors)
        tensors.foldUnitGradient()
        try write(tensors.projectionGradient, "grad_z.npy")
        if name == .byol { try write(tensors.predictionGradient, "grad_p.npy") }
        for term in tensors.values {
            let share = term.gradientNorm.flatMap { norm in methodNorm > 0 ? String(format: "  gradient share %.6f", norm / methodNorm) : nil }
            print(term.name.padding(toLength: 20, withPad: " ", startingAt: 0) + term.kind.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%.8f  (weighted %.8f)", term.value, term.weighted)
                  + (share ?? ""))
        }
        print("total".padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: "%.8f", total))
    }
}
