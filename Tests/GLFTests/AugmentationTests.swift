// The augmentation pipeline's executable spec. Reference numbers marked "torch" were computed
// offline with torch 2.15 running torchvision's `_functional_tensor` formulas verbatim
// (torchvision itself is not installed here) and `F.interpolate(..., bilinear, antialias=True)`.
import Foundation
import Testing
import GLF
import Neural

@Suite struct AugmentationTests {
    static func randomImages(count: Int, shape: SourceImageShape, seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count * shape.bytesPerImage).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    static let cifarShape = SourceImageShape(height: 32, width: 32, channels: 3)

    /// A view that only resamples (no random op fires) and leaves values in [0, 1].
    static func plainView(size: Int, channels: Int) -> ViewAugmentation {
        ViewAugmentation(outputSize: size, horizontalFlipProbability: 0,
                         colorJitter: ColorJitterSettings(probability: 0), grayscaleProbability: 0,
                         solarizationProbability: 0,
                         mean: Array(repeating: 0, count: channels), std: Array(repeating: 1, count: channels))
    }

    static func plainAugmenter(size: Int, channels: OutputChannels) throws -> Augmenter {
        let view = plainView(size: size, channels: channels.count)
        return try Augmenter(recipe: AugmentationRecipe(view1: view, view2: view, outputChannels: channels), seed: 0)
    }

    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 2e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance }
    }

    // MARK: determinism

    @Test func sameSeedGivesIdenticalOutputAndOthersDiffer() throws {
        let images = Self.randomImages(count: 6, shape: Self.cifarShape, seed: 1)
        func run(seed: UInt64, step: UInt64) throws -> [Float] {
            let output = Tensor(zeros: [1])
            try Augmenter(seed: seed).augmentBothViews(images: images, shape: Self.cifarShape, step: step, into: output)
            return output.array
        }
        let reference = try run(seed: 7, step: 3)
        #expect(try run(seed: 7, step: 3) == reference)
        #expect(try run(seed: 8, step: 3) != reference)
        #expect(try run(seed: 7, step: 4) != reference)
    }

    @Test func workerCountAndViewSplitDoNotChangeOutput() throws {
        let images = Self.randomImages(count: 7, shape: Self.cifarShape, seed: 2)
        let augmenter = try Augmenter(seed: 11)
        let one = Tensor(zeros: [1]), many = Tensor(zeros: [1])
        try augmenter.augmentBothViews(images: images, shape: Self.cifarShape, step: 5, into: one, workers: 1)
        for workers in [2, 3, 16] {
            try augmenter.augmentBothViews(images: images, shape: Self.cifarShape, step: 5, into: many, workers: workers)
            #expect(many.array == one.array)
        }
        // Rows 0..<B are view 1, rows B..<2B view 2, each equal to the single-view call.
        let half = one.count / 2
        let view = Tensor(zeros: [1])
        try augmenter.augment(view: .first, images: images, shape: Self.cifarShape, step: 5, into: view, workers: 2)
        #expect(view.shape == [7, 32, 32, 3] && view.array == Array(one.array[..<half]))
        try augmenter.augment(view: .second, images: images, shape: Self.cifarShape, step: 5, into: view)
        #expect(view.array == Array(one.array[half...]))
    }

    @Test func augmentRendersItsOwnDraws() throws {
        let images = Self.randomImages(count: 3, shape: Self.cifarShape, seed: 3)
        let augmenter = try Augmenter(seed: 12)
        let batch = Tensor(zeros: [1]), single = Tensor(zeros: [1])
        try augmenter.augment(view: .second, images: images, shape: Self.cifarShape, step: 9, into: batch)
        let perImage = 32 * 32 * 3
        for i in 0..<3 {
            let draw = augmenter.draw(view: .second, step: 9, image: i, source: Self.cifarShape)
            try augmenter.render(draw, view: .second, image: Array(images[i * perImage..<(i + 1) * perImage]),
                                 shape: Self.cifarShape, into: single)
            #expect(single.array == Array(batch.array[i * perImage..<(i + 1) * perImage]))
        }
    }

    // MARK: random resized crop

    @Test func cropBoxesStayInsideWithScaleAndRatioInRange() {
        let settings = RandomResizedCropSettings()
        var rng = SeededGenerator(seed: 4)
        var scales: [Double] = [], ratios: [Double] = []
        for _ in 0..<4000 {
            let box = settings.sampleBox(sourceHeight: 256, sourceWidth: 256, using: &rng)
            #expect(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1)
            #expect(box.top + box.height <= 256 && box.left + box.width <= 256)
            scales.append(Double(box.height * box.width) / 65536)
            ratios.append(Double(box.width) / Double(box.height))
        }
        // Sides are rounded to whole pixels: allow 2% around the nominal ranges.
        #expect(scales.min()! >= 0.08 * 0.98 && scales.max()! <= 1)
        #expect(ratios.min()! >= 0.75 * 0.98 && ratios.max()! <= 4.0 / 3.0 * 1.02)
        // ...and the draws cover the ranges.
        #expect(scales.min()! < 0.1 && scales.max()! > 0.9)
        #expect(ratios.min()! < 0.78 && ratios.max()! > 1.28)
        // Small sources too.
        for _ in 0..<2000 {
            let box = settings.sampleBox(sourceHeight: 32, sourceWidth: 28, using: &rng)
            #expect(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1)
            #expect(box.top + box.height <= 32 && box.left + box.width <= 28)
        }
    }

    @Test func cropFallsBackToTheCentreAsTorchvisionDoes() {
        var rng = SeededGenerator(seed: 5)
        // No attempt can fit (ratio ≥ 2 at full area): widest centred box of ratio 2.
        let wide = RandomResizedCropSettings(minimumScale: 1, maximumScale: 1, minimumRatio: 2, maximumRatio: 3)
        #expect(wide.sampleBox(sourceHeight: 32, sourceWidth: 32, using: &rng) == CropBox(top: 8, left: 0, height: 16, width: 32))
        let tall = RandomResizedCropSettings(minimumScale: 1, maximumScale: 1, minimumRatio: 0.25, maximumRatio: 0.5)
        #expect(tall.sampleBox(sourceHeight: 32, sourceWidth: 32, using: &rng) == CropBox(top: 0, left: 8, height: 32, width: 16))
        // Too large an area: the whole image if its ratio (24/30) is inside [3/4, 4/3]...
        let large = RandomResizedCropSettings(minimumScale: 1.5, maximumScale: 2)
        #expect(large.sampleBox(sourceHeight: 30, sourceWidth: 24, using: &rng) == CropBox(top: 0, left: 0, height: 30, width: 24))
        // ...else clamped to the range: 20/30 < 3/4 gives height round(20 / 0.75) = 27.
        #expect(large.sampleBox(sourceHeight: 30, sourceWidth: 20, using: &rng) == CropBox(top: 1, left: 0, height: 27, width: 20))
    }

    /// 8×8 gray gradient, value (8r + c)·4 / 255.
    static let gradient: [UInt8] = (0..<64).map { UInt8($0 * 4) }
    static let gradientShape = SourceImageShape(height: 8, width: 8, channels: 1)

    @Test func bilinearResizeMatchesTorch() throws {
        let output = Tensor(zeros: [1])
        // Enlarging a 3×5 crop to 4×4: plain bilinear, align_corners=False (torch).
        try Self.plainAugmenter(size: 4, channels: .gray).render(
            ViewDraw(crop: CropBox(top: 1, left: 2, height: 3, width: 5)), view: .first,
            image: Self.gradient, shape: Self.gradientShape, into: output)
        #expect(output.shape == [1, 4, 4, 1])
        #expect(Self.close(output.array, [
            0.1607843041419983, 0.17908497154712677, 0.19738562405109406, 0.21568626165390015,
            0.2392156720161438, 0.25751635432243347, 0.27581700682640076, 0.29411762952804565,
            0.3333333134651184, 0.3516339957714081, 0.36993464827537537, 0.38823527097702026,
            0.4117646813392639, 0.4300653636455536, 0.4483660161495209, 0.46666663885116577]))
        // Shrinking 8×8 to 3×3: the antialiased (triangle-filter) path (torch).
        try Self.plainAugmenter(size: 3, channels: .gray).render(
            ViewDraw(crop: CropBox(top: 0, left: 0, height: 8, width: 8)), view: .first,
            image: Self.gradient, shape: Self.gradientShape, into: output)
        #expect(Self.close(output.array, [
            0.15603716671466827, 0.19360166788101196, 0.23116616904735565,
            0.4565531611442566, 0.49411773681640625, 0.5316821336746216,
            0.7570692300796509, 0.7946337461471558, 0.8321982026100159]))
        // Same size: an exact copy.
        try Self.plainAugmenter(size: 8, channels: .gray).render(
            ViewDraw(crop: CropBox(top: 0, left: 0, height: 8, width: 8)), view: .first,
            image: Self.gradient, shape: Self.gradientShape, into: output)
        #expect(output.array == Self.gradient.map { Float($0) / 255 })
    }

    @Test func flipMirrorsColumnsExactly() throws {
        let image = Self.randomImages(count: 1, shape: Self.cifarShape, seed: 6)
        let augmenter = try Self.plainAugmenter(size: 32, channels: .rgb)
        let box = CropBox(top: 3, left: 5, height: 20, width: 17)
        let plain = Tensor(zeros: [1]), flipped = Tensor(zeros: [1])
        try augmenter.render(ViewDraw(crop: box), view: .first, image: image, shape: Self.cifarShape, into: plain)
        try augmenter.render(ViewDraw(crop: box, horizontalFlip: true), view: .first, image: image, shape: Self.cifarShape, into: flipped)
        var mirrored = true
        for y in 0..<32 { for x in 0..<32 { for c in 0..<3 {
            mirrored = mirrored && plain[(y * 32 + x) * 3 + c] == flipped[(y * 32 + 31 - x) * 3 + c]
        } } }
        #expect(mirrored)
    }

    // MARK: colour operations on known pixels (3×3 RGB, identity resize, no normalisation)

    /// Pixels 0...7 go through the 8-wide hue kernel, pixel 8 (a copy of pixel 0) through its scalar tail.
    static let pixels: [UInt8] = [200, 30, 90, 10, 240, 120, 128, 128, 128,
                                  255, 0, 60, 255, 255, 0, 0, 255, 255,
                                  90, 90, 30, 60, 200, 200, 200, 30, 90]
    static let pixelShape = SourceImageShape(height: 3, width: 3, channels: 3)
    static let unitPixels = pixels.map { Float($0) / 255 }

    func colour(_ jitter: ColorJitterDraw?, grayscale: Bool = false, solarize: Bool = false) throws -> [Float] {
        let output = Tensor(zeros: [1])
        try Self.plainAugmenter(size: 3, channels: .rgb).render(
            ViewDraw(crop: CropBox(top: 0, left: 0, height: 3, width: 3), colorJitter: jitter, grayscale: grayscale, solarize: solarize),
            view: .first, image: Self.pixels, shape: Self.pixelShape, into: output)
        return output.array
    }

    @Test func colourJitterOperationsMatchTorchvision() throws {
        #expect(try colour(nil) == Self.unitPixels)
        // torch, each operation alone:
        #expect(Self.close(try colour(ColorJitterDraw(order: [.brightness], brightness: 1.3)), [
            1.0, 0.15294116735458374, 0.4588235318660736, 0.05098039284348488, 1.0, 0.611764669418335, 0.6525490283966064,
            0.6525490283966064, 0.6525490283966064, 1.0, 0.0, 0.3058823347091675, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0,
            0.4588235318660736, 0.4588235318660736, 0.15294116735458374, 0.3058823347091675, 1.0, 1.0, 1.0,
            0.15294116735458374, 0.4588235318660736]))
        #expect(Self.close(try colour(ColorJitterDraw(order: [.contrast], contrast: 0.7)), [
            0.7045543193817139, 0.23788762092590332, 0.4025934934616089, 0.18298566341400146, 0.8143582344055176,
            0.48494645953178406, 0.5069072246551514, 0.5069072246551514, 0.5069072246551514, 0.8555346727371216,
            0.15553468465805054, 0.3202405571937561, 0.8555346727371216, 0.8555346727371216, 0.15553468465805054,
            0.15553468465805054, 0.8555346727371216, 0.8555346727371216, 0.4025934934616089, 0.4025934934616089,
            0.23788762092590332, 0.3202405571937561, 0.7045543193817139, 0.7045543193817139, 0.7045543193817139,
            0.23788762092590332, 0.4025934934616089]))
        #expect(Self.close(try colour(ColorJitterDraw(order: [.saturation], saturation: 1.8)), [
            1.0, 0.0, 0.36031374335289, 0.0, 1.0, 0.35278746485710144, 0.5020009279251099, 0.5020009279251099,
            0.5020009279251099, 1.0, 0.0, 0.1629505753517151, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.37442824244499207,
            0.37442824244499207, 0.0, 0.0, 0.9156579971313477, 0.9156579971313477, 1.0, 0.0, 0.36031374335289]))
        #expect(Self.close(try colour(ColorJitterDraw(order: [.hue], hue: 0.08)), [
            0.7843137383460999, 0.2023528665304184, 0.11764704436063766, 0.039215706288814545, 0.9411764740943909,
            0.9035295844078064, 0.501960813999176, 0.501960813999176, 0.501960813999176, 1.0, 0.2447061538696289, 0.0,
            0.5200002193450928, 1.0, 0.0, 0.0, 0.5199999809265137, 1.0, 0.24000005424022675, 0.3529411852359772,
            0.11764705181121826, 0.23529408872127533, 0.520784318447113, 0.7843137383460999, 0.7843137383460999,
            0.2023528665304184, 0.11764704436063766]))
        #expect(Self.close(try colour(ColorJitterDraw(order: [.hue], hue: -0.3)), [
            0.11764704436063766, 0.219607874751091, 0.7843137383460999, 0.9411764740943909, 0.6509804725646973,
            0.039215706288814545, 0.501960813999176, 0.501960813999176, 0.501960813999176, 0.0, 0.0352940559387207, 1.0,
            1.0, 0.0, 0.8000001907348633, 0.8000000715255737, 1.0, 0.0, 0.3529411852359772, 0.11764705181121826,
            0.30588239431381226, 0.6745098233222961, 0.7843137383460999, 0.23529408872127533, 0.11764704436063766,
            0.219607874751091, 0.7843137383460999]))
        #expect(Self.close(try colour(ColorJitterDraw(order: [.hue], hue: 0.5)), [
            0.11764704436063766, 0.7843137383460999, 0.5490193963050842, 0.9411764740943909, 0.039215706288814545,
            0.509803831577301, 0.501960813999176, 0.501960813999176, 0.501960813999176, 0.0, 1.0, 0.7647058963775635,
            0.0, 2.384185791015625e-07, 1.0, 1.0, 0.0, 0.0, 0.11764705181121826, 0.11764711886644363,
            0.3529411852359772, 0.7843137383460999, 0.23529408872127533, 0.23529408872127533, 0.11764704436063766,
            0.7843137383460999, 0.5490193963050842]))
        // The drawn order matters: hue, saturation, brightness, contrast in that order (torch).
        #expect(Self.close(try colour(ColorJitterDraw(order: [.hue, .saturation, .brightness, .contrast],
                                                      brightness: 0.9, contrast: 1.25, saturation: 0.6, hue: 0.05)), [
            0.5668601393699646, 0.11686014384031296, 0.14068374037742615, 0.21141135692596436, 0.8202348947525024,
            0.6852350831031799, 0.4577152132987976, 0.4577152132987976, 0.4577152132987976, 0.7196288704872131,
            0.08830518275499344, 0.044628895819187164, 0.7238356471061707, 0.9263355135917664, 0.25133541226387024,
            0.1292368471622467, 0.6017367243766785, 0.8042368292808533, 0.22086277604103088, 0.26850980520248413,
            0.10968626290559769, 0.28740835189819336, 0.5468200445175171, 0.657996654510498, 0.5668601393699646,
            0.11686014384031296, 0.14068374037742615]))
        // The 8-wide hue kernel and its scalar tail agree bit for bit (pixel 8 is pixel 0).
        for shift: Float in [-0.5, -0.3, -0.01, 0, 0.08, 0.37, 0.5] {
            let out = try colour(ColorJitterDraw(order: [.hue], hue: shift))
            #expect(Array(out[24..<27]) == Array(out[0..<3]))
        }
        // No shift is the identity up to HSV round-off; factor-1 blends are exact.
        #expect(Self.close(try colour(ColorJitterDraw(order: [.hue], hue: 0)), Self.unitPixels, tolerance: 1e-6))
        #expect(try colour(ColorJitterDraw(order: [.brightness, .contrast, .saturation], brightness: 1, contrast: 1, saturation: 1))
                == Self.unitPixels)
    }

    @Test func grayscaleAndSolarize() throws {
        // ITU-R 601 luma as torchvision computes it (0.2989, 0.587, 0.114), replicated (torch).
        let luma: [Float] = [0.3437255024909973, 0.6178392171859741, 0.5019106268882751, 0.3257235288619995,
                             0.8859000205993652, 0.7010000348091125, 0.32608234882354736, 0.6201333999633789, 0.3437255024909973]
        #expect(Self.close(try colour(nil, grayscale: true), luma.flatMap { [$0, $0, $0] }))
        // ≥ 0.5 → 1 − x: 128/255 ≥ 0.5 is inverted, 120/255 is not.
        let expected = Self.unitPixels.map { $0 >= 0.5 ? 1 - $0 : $0 }
        #expect(try colour(nil, solarize: true) == expected)
        #expect(expected[6] == 1 - Float(128) / 255 && expected[5] == Float(120) / 255)
    }

    @Test func oneChannelSourcesAndOutputs() throws {
        let grayOut = Tensor(zeros: [1]), rgbOut = Tensor(zeros: [1])
        let draw = ViewDraw(crop: CropBox(top: 1, left: 0, height: 6, width: 7),
                            colorJitter: ColorJitterDraw(order: [.saturation, .hue, .contrast], contrast: 1.2, saturation: 0.3, hue: 0.2))
        try Self.plainAugmenter(size: 5, channels: .gray).render(draw, view: .first, image: Self.gradient, shape: Self.gradientShape, into: grayOut)
        try Self.plainAugmenter(size: 5, channels: .rgb).render(draw, view: .first, image: Self.gradient, shape: Self.gradientShape, into: rgbOut)
        #expect(grayOut.shape == [1, 5, 5, 1] && rgbOut.shape == [1, 5, 5, 3])
        // Replicated gray: R = G = B; hue leaves grey alone, saturation and contrast only see luma
        // (0.9999·v), so the channels track the 1-channel result closely.
        for i in 0..<25 {
            #expect(rgbOut[3 * i] == rgbOut[3 * i + 1] && rgbOut[3 * i + 1] == rgbOut[3 * i + 2])
            #expect(abs(rgbOut[3 * i] - grayOut[i]) < 1e-3)
        }
        // RGB source, gray output: luma of the pixels (torch).
        try Self.plainAugmenter(size: 3, channels: .gray).render(ViewDraw(crop: CropBox(top: 0, left: 0, height: 3, width: 3)),
            view: .first, image: Self.pixels, shape: Self.pixelShape, into: grayOut)
        #expect(Self.close(grayOut.array, [0.3437255024909973, 0.6178392171859741, 0.5019106268882751, 0.3257235288619995,
                                           0.8859000205993652, 0.7010000348091125, 0.32608234882354736, 0.6201333999633789, 0.3437255024909973]))
    }

    // MARK: statistics of the draws (fixed seed)

    @Test func drawRatesMatchTheRecipe() throws {
        let augmenter = try Augmenter(seed: 21)
        let n = 4000
        for view in AugmentationView.allCases {
            var flips = 0, jitters = 0, grays = 0, solarized = 0
            for i in 0..<n {
                let draw = augmenter.draw(view: view, step: 1, image: i, source: Self.cifarShape)
                flips += draw.horizontalFlip ? 1 : 0
                grays += draw.grayscale ? 1 : 0
                solarized += draw.solarize ? 1 : 0
                if let jitter = draw.colorJitter {
                    jitters += 1
                    #expect(Set(jitter.order) == Set(ColorOperation.allCases) && jitter.order.count == 4)
                    #expect(jitter.brightness.map { $0 >= 0.6 && $0 < 1.4 } == true)
                    #expect(jitter.contrast.map { $0 >= 0.6 && $0 < 1.4 } == true)
                    #expect(jitter.saturation.map { $0 >= 0.8 && $0 < 1.2 } == true)
                    #expect(jitter.hue.map { $0 >= -0.1 && $0 < 0.1 } == true)
                }
            }
            // 4000 draws: one standard deviation is at most 0.008.
            #expect(abs(Double(flips) / Double(n) - 0.5) < 0.03)
            #expect(abs(Double(jitters) / Double(n) - 0.8) < 0.03)
            #expect(abs(Double(grays) / Double(n) - 0.2) < 0.03)
            if view == .first { #expect(solarized == 0) } else { #expect(abs(Double(solarized) / Double(n) - 0.2) < 0.03) }
        }
    }

    // MARK: output shape, normalisation, settings

    @Test func greyImageMapsToNormalisedGrey() throws {
        // Mid-grey 128 (= 0.50196 on [0, 1]) with no colour op: (v − mean) / std per channel.
        var view = ViewAugmentation(colorJitter: ColorJitterSettings(probability: 0), grayscaleProbability: 0)
        view.solarizationProbability = 0
        let augmenter = try Augmenter(recipe: AugmentationRecipe(view1: view, view2: view), seed: 3)
        let images = [UInt8](repeating: 128, count: 5 * Self.cifarShape.bytesPerImage)
        let output = Tensor(zeros: [1])
        try augmenter.augmentBothViews(images: images, shape: Self.cifarShape, step: 0, into: output)
        #expect(output.shape == [10, 32, 32, 3])
        let v = Float(128) / 255
        let expected = (0..<3).map { (v - ViewAugmentation.cifar10Mean[$0]) / ViewAugmentation.cifar10Std[$0] }
        #expect((0..<output.count).allSatisfy { abs(output[$0] - expected[$0 % 3]) < 1e-5 })
    }

    @Test func recipesRoundTripAndBadInputIsATypedError() throws {
        let data = try JSONEncoder().encode(AugmentationRecipe.cifar)
        #expect(try JSONDecoder().decode(AugmentationRecipe.self, from: data) == .cifar)
        #expect(AugmentationRecipe.cifar.view1.solarizationProbability == 0 && AugmentationRecipe.cifar.view2.solarizationProbability == 0.2)

        var bad = AugmentationRecipe.cifar
        bad.view2.grayscaleProbability = 1.5
        #expect(throws: AugmentationError.self) { try Augmenter(recipe: bad, seed: 0) }
        bad = .cifar
        bad.outputChannels = .gray   // mean and std still have three entries
        #expect(throws: AugmentationError.self) { try Augmenter(recipe: bad, seed: 0) }
        bad = .cifar
        bad.view1.colorJitter.hue = 0.7
        #expect(throws: AugmentationError.self) { try Augmenter(recipe: bad, seed: 0) }

        let augmenter = try Augmenter(seed: 0)
        let output = Tensor(zeros: [1])
        let error = #expect(throws: AugmentationError.self) {
            try augmenter.augmentBothViews(images: [UInt8](repeating: 0, count: 3073), shape: Self.cifarShape, step: 0, into: output)
        }
        #expect(error?.code == .invalidImages)
        #expect(throws: AugmentationError.self) {
            try augmenter.augment(view: .first, images: [UInt8](repeating: 0, count: 64),
                                  shape: SourceImageShape(height: 4, width: 8, channels: 2), step: 0, into: output)
        }
        // An empty batch is not an error.
        try augmenter.augmentBothViews(images: [], shape: Self.cifarShape, step: 0, into: output)
        #expect(output.shape == [0, 32, 32, 3])
    }
}
