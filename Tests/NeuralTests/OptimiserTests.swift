// Optimisers, schedules and the EMA target, checked against references computed here in Double
// straight from the formulas in Sources/Neural/Optimisers (PyTorch's SGD and AdamW, solo-learn's
// LARS and momentum updater), plus learning on a real least-squares problem through `Linear`.
import Foundation
import Neural
import Testing

// MARK: - A tiny arena with every role

/// (name, shape, role, initial values, gradient amplitude). The two weights are chosen so that with
/// LARS at lr 0.1 and η 0.02 "fc.weight" (large weights, small gradients) is clipped to the global
/// rate and "head.weight" (small weights, large gradients) is not; "proj.weight" starts at zero
/// (LARS's ‖w‖ = 0 branch).
private let tinyLayout: [(name: String, shape: [Int], role: ParameterRole, initial: [Float], amplitude: Float)] = [
    ("fc.weight", [2, 3], .weight, [0.5, -0.3, 0.8, 0.1, -0.7, 0.2], 0.01),
    ("fc.bias", [2], .bias, [0.1, -0.2], 0.3),
    ("bn.weight", [2], .normScale, [1.0, 0.9], 0.2),
    ("bn.bias", [2], .normShift, [0.05, -0.05], 0.2),
    ("bn.running_mean", [2], .statistic, [0.3, -0.4], 5),
    ("bn.running_var", [2], .statistic, [1.2, 0.8], 5),
    ("head.weight", [2, 2], .weight, [0.02, -0.01, 0.03, 0.015], 0.5),
    ("proj.weight", [3], .weight, [0, 0, 0], 0.1),
]

private func makeTinyArena(shift: Float = 0) -> ParameterArena {
    let arena = ParameterArena()
    for p in tinyLayout { arena.register(p.name, shape: p.shape, role: p.role, initial: p.initial.map { $0 + shift }) }
    arena.seal()
    return arena
}

/// Deterministic gradients for step k (statistics get large ones: they must be ignored).
private func tinyGradient(parameter: Int, element i: Int, step k: Int) -> Float {
    tinyLayout[parameter].amplitude * Float(sin(1.3 * Double(i) + 0.7 * Double(k) + Double(parameter)))
}

private func setTinyGradients(_ arena: ParameterArena, step k: Int) {
    for (pi, p) in arena.parameters.enumerated() {
        for i in 0..<p.count { p.gradients[i] = tinyGradient(parameter: pi, element: i, step: k) }
    }
}

private func values(_ arena: ParameterArena) -> [Float] { Array(UnsafeBufferPointer(start: arena.values, count: arena.count)) }

/// The reference's view of the tiny arena: one Double array per parameter.
private struct ReferenceParameter {
    var role: ParameterRole
    var w: [Double]
    var buffer: [Double]   // momentum, or Adam's m
    var second: [Double]   // Adam's v
    init(role: ParameterRole, w: [Double]) {
        self.role = role
        self.w = w
        buffer = Array(repeating: 0, count: w.count)
        second = buffer
    }
}

private func referenceParameters() -> [ReferenceParameter] {
    tinyLayout.map { ReferenceParameter(role: $0.role, w: $0.initial.map(Double.init)) }
}

private func referenceGradient(parameter: Int, count: Int, step k: Int) -> [Double] {
    (0..<count).map { Double(tinyGradient(parameter: parameter, element: $0, step: k)) }
}

private func norm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

/// PyTorch's momentum SGD on a prepared direction d.
private func referenceMomentum(_ p: inout ReferenceParameter, d: [Double], lr: Double, momentum mu: Double,
                               nesterov: Bool, firstStep: Bool) {
    for i in 0..<d.count {
        if mu == 0 { p.w[i] -= lr * d[i]; continue }
        p.buffer[i] = firstStep ? d[i] : mu * p.buffer[i] + d[i]
        p.w[i] -= lr * (nesterov ? d[i] + mu * p.buffer[i] : p.buffer[i])
    }
}

/// Compares every value of the arena with the reference: within 1e-5 relative (Float rounding of
/// a few operations), and statistics exactly at their initial values.
private func expectMatches(_ arena: ParameterArena, _ reference: [ReferenceParameter], step: Int,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    for (pi, p) in arena.parameters.enumerated() {
        for i in 0..<p.count {
            let actual = Double(p.values[i]), expected = reference[pi].w[i]
            if p.role == .statistic {
                #expect(p.values[i] == tinyLayout[pi].initial[i], "statistic \(p.name)[\(i)] changed at step \(step)",
                        sourceLocation: sourceLocation)
            } else {
                #expect(abs(actual - expected) <= 1e-7 + 1e-5 * abs(expected),
                        "\(p.name)[\(i)] step \(step): \(actual) vs reference \(expected)", sourceLocation: sourceLocation)
            }
        }
    }
}

// MARK: - Updates against references

@Suite struct OptimiserTests {
    @Test("SGD matches PyTorch's formula for 3 steps", arguments: [(Float(0.9), false), (0.9, true), (0, false)])
    func sgdMatchesReference(momentum: Float, nesterov: Bool) {
        let arena = makeTinyArena()
        let sgd = SGD(learningRate: 0.1, momentum: momentum, weightDecay: 0.05, nesterov: nesterov)
        var reference = referenceParameters()
        let lrs: [Float] = [0.1, 0.05, 0.2]
        for k in 0..<3 {
            setTinyGradients(arena, step: k)
            sgd.learningRate = lrs[k]
            sgd.step(arena)
            for pi in reference.indices where reference[pi].role != .statistic {
                let g = referenceGradient(parameter: pi, count: reference[pi].w.count, step: k)
                let wd = reference[pi].role == .weight ? 0.05 : 0
                let d = zip(g, reference[pi].w).map { $0 + wd * $1 }
                referenceMomentum(&reference[pi], d: d, lr: Double(lrs[k]), momentum: Double(momentum),
                                  nesterov: nesterov, firstStep: k == 0)
            }
            expectMatches(arena, reference, step: k)
        }
        #expect(sgd.stepCount == 3)
    }

    @Test("LARS matches solo-learn's formula for 3 steps", arguments: [true, false])
    func larsMatchesReference(clipping: Bool) {
        let arena = makeTinyArena()
        let (lr, eta, wd, mu) = (0.1, 0.02, 0.05, 0.9)
        let lars = LARS(learningRate: Float(lr), momentum: Float(mu), weightDecay: Float(wd), trustCoefficient: Float(eta),
                        clipsLearningRate: clipping)
        var reference = referenceParameters()
        var trustAtFirstStep: [String: Double] = [:]
        for k in 0..<3 {
            setTinyGradients(arena, step: k)
            lars.step(arena)
            for pi in reference.indices where reference[pi].role != .statistic {
                let g = referenceGradient(parameter: pi, count: reference[pi].w.count, step: k)
                var d = g
                if reference[pi].role == .weight {
                    let wn = norm(reference[pi].w), gn = norm(g)
                    if wn != 0 && gn != 0 {
                        var trust = eta * wn / (gn + wn * wd + 1e-8)
                        if clipping { trust = min(trust / lr, 1) }
                        if k == 0 { trustAtFirstStep[tinyLayout[pi].name] = trust }
                        d = zip(g, reference[pi].w).map { trust * ($0 + wd * $1) }
                    }
                }
                referenceMomentum(&reference[pi], d: d, lr: lr, momentum: mu, nesterov: false, firstStep: k == 0)
            }
            expectMatches(arena, reference, step: k)
        }
        // The fixture exercises both sides of the clip, and the zero-weight branch.
        if clipping {
            #expect(trustAtFirstStep["fc.weight"] == 1)
            #expect(trustAtFirstStep["head.weight"]! < 0.1)
        }
        #expect(trustAtFirstStep["proj.weight"] == nil)
    }

    @Test("AdamW matches PyTorch's formula for 3 steps")
    func adamWMatchesReference() {
        let arena = makeTinyArena()
        let (lr, wd, b1, b2, eps) = (0.01, 0.1, 0.9, 0.999, 1e-8)
        let adam = AdamW(learningRate: Float(lr), weightDecay: Float(wd))
        var reference = referenceParameters()
        for k in 0..<3 {
            setTinyGradients(arena, step: k)
            adam.step(arena)
            let t = Double(k + 1)
            for pi in reference.indices where reference[pi].role != .statistic {
                let g = referenceGradient(parameter: pi, count: reference[pi].w.count, step: k)
                var p = reference[pi]
                for i in g.indices {
                    if p.role == .weight { p.w[i] *= 1 - lr * wd }
                    p.buffer[i] = b1 * p.buffer[i] + (1 - b1) * g[i]
                    p.second[i] = b2 * p.second[i] + (1 - b2) * g[i] * g[i]
                    let mHat = p.buffer[i] / (1 - pow(b1, t)), vHat = p.second[i] / (1 - pow(b2, t))
                    p.w[i] -= lr * mHat / (vHat.squareRoot() + eps)
                }
                reference[pi] = p
            }
            expectMatches(arena, reference, step: k)
        }
    }

    // Hard-coded from torch 2.15 (float32) on the same arena and gradients, weights in a group with
    // weight decay, biases and norm parameters in one without: torch.optim.SGD (Nesterov),
    // torch.optim.AdamW, and solo-learn's solo/utils/lars.py (clip_lars_lr, eta 0.02, bias/norm
    // group with exclude_bias_n_norm_lars). An independent check that the formulas above are theirs.
    @Test("SGD, AdamW and LARS agree with numbers from torch.optim and solo-learn")
    func agreesWithTorch() {
        let sgdArena = makeTinyArena(), adamArena = makeTinyArena(), larsArena = makeTinyArena()
        let sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.05, nesterov: true)
        let adam = AdamW(learningRate: 0.01, weightDecay: 0.1)
        let lars = LARS(learningRate: 0.1, momentum: 0.9, weightDecay: 0.05, trustCoefficient: 0.02, clipsLearningRate: true)
        for k in 0..<3 {
            setTinyGradients(sgdArena, step: k); sgd.step(sgdArena)
            setTinyGradients(adamArena, step: k); adam.step(adamArena)
            setTinyGradients(larsArena, step: k); lars.step(larsArena)
        }
        let torchSGD: [Float] = [
            0.476444364, -0.294554621, 0.768197715, 0.102596395, -0.668663919, 0.187257111,
            -0.1059383, -0.258206785, 0.924005091, 0.989865482, 0.105171762, 0.0859136432,
            0.300000012, -0.400000006, 1.20000005, 0.800000012, -0.0733384788, -0.34979865,
            -0.0606613718, 0.306735933, -0.0650949851, -0.0364932828, 0.0455711707,
        ]
        let torchAdamW: [Float] = [
            0.482573479, -0.328356206, 0.78670752, 0.129548684, -0.674165368, 0.171173975,
            0.0701795891, -0.219357446, 0.975431263, 0.927795529, 0.0531120189, -0.0203945376,
            0.300000012, -0.400000006, 1.20000005, 0.800000012, 0.0211365037, -0.0397443064,
            0.0109591298, 0.0443776436, -0.0298236348, -0.0243178159, 0.027909182,
        ]
        let soloLearnLARS: [Float] = [
            0.483828723, -0.296364427, 0.777324378, 0.101773098, -0.677674592, 0.191332147,
            -0.0452003814, -0.252774596, 0.939586401, 0.957306743, 0.0815171152, 0.0471090265,
            0.300000012, -0.400000006, 1.20000005, 0.800000012, 0.019582456, -0.0128917927,
            0.028851945, 0.0172812771, -0.0183949471, -0.0244914927, 0.00529205473,
        ]
        for (name, arena, expected) in [("SGD", sgdArena, torchSGD), ("AdamW", adamArena, torchAdamW), ("LARS", larsArena, soloLearnLARS)] {
            #expect(expected.count == arena.count)
            for (i, (a, b)) in zip(values(arena), expected).enumerated() {
                #expect(abs(a - b) <= 1e-6 + 1e-5 * abs(b), "\(name)[\(i)]: \(a) vs \(b)")
            }
        }
    }

    @Test("weight decay reaches weights only; statistics are never touched")
    func rolesWithZeroGradients() {
        let optimisers: [Optimiser] = [SGD(learningRate: 0.1, weightDecay: 0.5), AdamW(learningRate: 0.1, weightDecay: 0.5)]
        for optimiser in optimisers {
            let arena = makeTinyArena()
            arena.zeroGradients()
            for p in arena.parameters where p.role == .statistic { for i in 0..<p.count { p.gradients[i] = 7 } }
            optimiser.step(arena)
            for (pi, p) in arena.parameters.enumerated() {
                let before = tinyLayout[pi].initial
                for i in 0..<p.count {
                    let expected = p.role == .weight ? before[i] * (1 - 0.1 * 0.5) : before[i]
                    #expect(abs(p.values[i] - expected) <= 1e-7, "\(type(of: optimiser)) \(p.name)[\(i)]")
                }
            }
        }
    }

    // MARK: - Learning

    /// Least squares through a real Linear layer: student (8→3) fits a random teacher on 64 points.
    /// Returns the loss before the first step and after `steps` steps.
    private func fitRegression(_ optimiser: Optimiser, steps: Int = 200) -> (initial: Double, final: Double) {
        var rng = SeededGenerator(seed: 2024)
        let teacherArena = ParameterArena(), arena = ParameterArena()
        let teacher = Linear("teacher", in: teacherArena, inFeatures: 8, outFeatures: 3, rng: &rng)
        let student = Linear("student", in: arena, inFeatures: 8, outFeatures: 3, rng: &rng)
        teacherArena.seal()
        arena.seal()
        for i in 0..<teacher.weight.count { teacher.weight.values[i] *= 3 }
        let x = Tensor(zeros: [64, 8])
        x.fillNormal(std: 1, using: &rng)
        let target = Tensor(zeros: [64, 3])
        target.copy(from: teacher.forward(x, mode: .inference))

        let dy = Tensor(zeros: [64, 3])
        // L = 1/(2N) Σ ‖y − t‖²,  dL/dy = (y − t)/N.
        func lossAndGradient() -> Double {
            let y = student.forward(x, mode: .training)
            var loss = 0.0
            for i in 0..<y.count {
                let r = y[i] - target[i]
                loss += Double(r * r)
                dy[i] = r / 64
            }
            return loss / 128
        }
        let initial = lossAndGradient()
        for _ in 0..<steps {
            arena.zeroGradients()
            _ = lossAndGradient()
            _ = student.backward(dy)
            optimiser.step(arena)
        }
        return (initial, lossAndGradient())
    }

    @Test("SGD minimises least squares") func sgdLearns() {
        let (initial, final) = fitRegression(SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4))
        #expect(final < 0.01 * initial, "loss \(initial) → \(final)")
    }

    @Test("LARS minimises least squares") func larsLearns() {
        let (initial, final) = fitRegression(LARS(learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4))
        #expect(final < 0.01 * initial, "loss \(initial) → \(final)")
    }

    @Test("AdamW minimises least squares") func adamWLearns() {
        let (initial, final) = fitRegression(AdamW(learningRate: 0.05, weightDecay: 1e-4))
        #expect(final < 0.01 * initial, "loss \(initial) → \(final)")
    }

    // MARK: - State

    enum Kind: String, CaseIterable, Sendable { case sgd, nesterov, lars, adamW }

    private func make(_ kind: Kind) -> Optimiser {
        switch kind {
        case .sgd: SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.05)
        case .nesterov: SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.05, nesterov: true)
        case .lars: LARS(learningRate: 0.1, momentum: 0.9, weightDecay: 0.05)
        case .adamW: AdamW(learningRate: 0.01, weightDecay: 0.1)
        }
    }

    @Test("state saved mid-way and restored into a new optimiser continues bit for bit", arguments: Kind.allCases)
    func stateRoundTrip(kind: Kind) throws {
        let schedule = LearningRateSchedule.warmupCosine(peak: 0.1, warmupSteps: 2, totalSteps: 6)
        let straight = makeTinyArena(), resumed = makeTinyArena()
        let uninterrupted = make(kind)
        for k in 0..<6 {
            setTinyGradients(straight, step: k)
            uninterrupted.learningRate = schedule.learningRate(atStep: k)
            uninterrupted.step(straight)
        }

        let first = make(kind)
        for k in 0..<3 {
            setTinyGradients(resumed, step: k)
            first.learningRate = schedule.learningRate(atStep: k)
            first.step(resumed)
        }
        let saved = first.saveState(for: resumed)
        let second = make(kind)
        try second.restoreState(saved, for: resumed)
        #expect(second.stepCount == 3)
        #expect(second.saveState(for: resumed) == saved)
        for k in 3..<6 {
            setTinyGradients(resumed, step: k)
            second.learningRate = schedule.learningRate(atStep: k)
            second.step(resumed)
        }
        #expect(values(resumed) == values(straight))
    }

    @Test("state is a named list shaped like the parameters, without statistics")
    func stateLayout() {
        let arena = makeTinyArena()
        setTinyGradients(arena, step: 0)
        let adam = AdamW(learningRate: 0.01)
        adam.step(arena)
        let state = adam.saveState(for: arena)
        let trainable = tinyLayout.filter { $0.role != .statistic }
        #expect(state.kind == "AdamW")
        #expect(state.stepCount == 1)
        #expect(state.entries.map(\.name) == trainable.map { "exp_avg/\($0.name)" } + trainable.map { "exp_avg_sq/\($0.name)" })
        #expect(state.entries.map(\.shape) == (trainable + trainable).map(\.shape))
        // After one step m = (1 − β1)·g.
        let g0 = tinyGradient(parameter: 0, element: 0, step: 0)
        #expect(abs(state.entries[0].values[0] - 0.1 * g0) <= 1e-8)
        #expect(SGD(learningRate: 0.1, momentum: 0).saveState(for: arena).entries.isEmpty)
    }

    @Test("restoring a mismatched state fails with a typed error and changes nothing")
    func restoreErrors() throws {
        let arena = makeTinyArena()
        setTinyGradients(arena, step: 0)
        let sgd = SGD(learningRate: 0.1)
        sgd.step(arena)
        let good = sgd.saveState(for: arena)

        func failure(_ state: OptimiserState, into optimiser: Optimiser) -> OptimiserStateError.Code? {
            #expect(throws: OptimiserStateError.self) { try optimiser.restoreState(state, for: arena) }?.code
        }
        #expect(failure(good, into: AdamW(learningRate: 0.1)) == .kindMismatch)
        #expect(failure(good, into: SGD(learningRate: 0.1, momentum: 0)) == .unexpectedEntry)
        var missing = good
        missing.entries.removeLast()
        #expect(failure(missing, into: SGD(learningRate: 0.1)) == .missingEntry)
        var reshaped = good
        reshaped.entries[0].shape = [3, 2]
        #expect(failure(reshaped, into: SGD(learningRate: 0.1)) == .shapeMismatch)
        var extra = good
        extra.entries.append(NamedTensor(name: "momentum_buffer/ghost.weight", shape: [1], values: [0]))
        #expect(failure(extra, into: SGD(learningRate: 0.1)) == .unexpectedEntry)

        // A failed restore leaves the optimiser as it was.
        let bad = SGD(learningRate: 0.1)
        try bad.restoreState(good, for: arena)
        _ = failure(missing, into: bad)
        #expect(bad.saveState(for: arena) == good)
    }

    // MARK: - Learning-rate schedule

    @Test("warm-up then cosine: start, end of warm-up, midpoint, end")
    func warmupCosineSchedule() {
        let s = LearningRateSchedule.warmupCosine(peak: 1.0, warmupSteps: 10, totalSteps: 110, warmupStart: 0.1, final: 0.001)
        #expect(s.learningRate(atStep: 0) == 0.1)
        #expect(abs(s.learningRate(atStep: 5) - 0.55) < 1e-6)
        #expect(s.learningRate(atStep: 10) == 1.0)
        #expect(abs(s.learningRate(atStep: 60) - 0.5005) < 1e-6)
        #expect(abs(s.learningRate(atStep: 35) - Float(0.001 + 0.999 * (1 + cos(Double.pi / 4)) / 2)) < 1e-6)
        #expect(s.learningRate(atStep: 109) > 0.001 && s.learningRate(atStep: 109) < 0.00125)
        #expect(s.learningRate(atStep: 110) == 0.001)
        #expect(s.learningRate(atStep: 10_000) == 0.001)
        let decay = (10...110).map { s.learningRate(atStep: $0) }
        #expect(zip(decay, decay.dropFirst()).allSatisfy { $0 >= $1 })

        let fromZero = LearningRateSchedule.warmupCosine(peak: 0.4, warmupSteps: 4, totalSteps: 8)
        #expect(fromZero.learningRate(atStep: 0) == 0)
        #expect(fromZero.learningRate(atStep: 2) == 0.2)
        #expect(fromZero.learningRate(atStep: 8) == 0)
        let noWarmup = LearningRateSchedule.warmupCosine(peak: 0.4, warmupSteps: 0, totalSteps: 8)
        #expect(noWarmup.learningRate(atStep: 0) == 0.4)
    }

    @Test("constant and warm-up-then-constant schedules")
    func constantSchedules() {
        let constant = LearningRateSchedule.constant(0.3)
        #expect([0, 1, 1_000_000].map { constant.learningRate(atStep: $0) } == [0.3, 0.3, 0.3])
        let daemon = LearningRateSchedule.warmupConstant(peak: 0.06, warmupSteps: 3)
        #expect(daemon.learningRate(atStep: 0) == 0)
        #expect(abs(daemon.learningRate(atStep: 2) - 0.04) < 1e-8)
        #expect(daemon.learningRate(atStep: 3) == 0.06)
        #expect(daemon.learningRate(atStep: 5_000_000) == 0.06)
    }

    // MARK: - EMA

    @Test("EMA with τ = 0 copies the online arena, τ = 1 keeps the target")
    func emaExtremes() {
        let online = makeTinyArena(shift: 0.25)
        let target = makeTinyArena()
        ExponentialMovingAverage.update(target: target, online: online, decay: 1)
        #expect(values(target) == values(makeTinyArena()))
        ExponentialMovingAverage.update(target: target, online: online, decay: 0)
        #expect(values(target) == values(online))
    }

    @Test("one EMA update is ξ ← τξ + (1 − τ)θ, statistics included")
    func emaFormula() {
        let online = makeTinyArena(shift: 0.25)
        let target = makeTinyArena()
        let before = values(target), theta = values(online)
        ExponentialMovingAverage(decay: 0.9).update(target: target, online: online, step: 123)
        for (i, (xi, (b, t))) in zip(values(target), zip(before, theta)).enumerated() {
            let expected = 0.9 * Double(b) + 0.1 * Double(t)
            #expect(abs(Double(xi) - expected) <= 1e-7, "[\(i)]")
        }
        #expect(values(online) == theta)
    }

    @Test("EMA decay: fixed, and solo-learn's cosine from τ_base to 1")
    func emaDecaySchedules() {
        #expect(ExponentialMovingAverage().decay(atStep: 0) == 0.99)
        #expect(ExponentialMovingAverage(decay: 0.996).decay(atStep: 1_000_000) == 0.996)
        let cosine = ExponentialMovingAverage(schedule: .cosine(base: 0.99, totalSteps: 1000))
        #expect(cosine.decay(atStep: 0) == 0.99)
        #expect(abs(cosine.decay(atStep: 500) - 0.995) < 1e-6)
        #expect(abs(cosine.decay(atStep: 250) - Float(1 - 0.01 * (cos(Double.pi / 4) + 1) / 2)) < 1e-6)
        #expect(cosine.decay(atStep: 1000) == 1)
        #expect(cosine.decay(atStep: 5000) == 1)
    }
}
