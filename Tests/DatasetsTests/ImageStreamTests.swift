import Testing
import Datasets

/// The stream orders have the properties the stream benchmark's comparison rests on: every image
/// sent (camera: as consecutive frames), tasks whose classes partition the labels and arrive one
/// after another, runs of one class, and jitter only where the order says so.
@Suite struct ImageStreamTests {
    /// 10 classes of 60 images, labels interleaved as a real collection's might be.
    static let labels = (0..<600).map { ($0 * 7) % 10 }

    @Test func iidSendsEveryImageOnceShuffled() throws {
        let stream = try ImageStream(labels: Self.labels, classCount: 10, order: .iid, seed: 1)
        #expect(stream.frames.map(\.image).sorted() == Array(0..<600))
        #expect(stream.frames.map(\.image) != Array(0..<600))
        #expect(stream.taskClasses == [Array(0..<10)] && stream.taskStarts == [0])
        #expect(stream.frames.allSatisfy { $0.task == 0 && $0.jitter == .none })
        // Shuffled means no long runs of one class: the longest is a few images, not 60.
        #expect(Self.runLengths(Self.labels, stream).max()! < 10)
    }

    @Test func classesArriveTaskAfterTask() throws {
        let stream = try ImageStream(labels: Self.labels, classCount: 10, order: .classes(tasks: 3), seed: 2)
        #expect(stream.frames.map(\.image).sorted() == Array(0..<600))
        #expect(stream.taskClasses.map(\.count) == [3, 3, 4])
        #expect(stream.taskClasses.flatMap { $0 }.sorted() == Array(0..<10))
        #expect(stream.taskStarts == [0, 180, 360])
        for (index, frame) in stream.frames.enumerated() {
            #expect(stream.taskClasses[frame.task].contains(Self.labels[frame.image]))
            #expect(frame.task == stream.taskStarts.lastIndex { $0 <= index })
            #expect(frame.jitter == .none)
        }
        #expect(try ImageStream(labels: Self.labels, classCount: 10, order: .classes(tasks: 3), seed: 2).frames == stream.frames)
        #expect(try ImageStream(labels: Self.labels, classCount: 10, order: .classes(tasks: 3), seed: 3).frames != stream.frames)
        #expect(throws: DatasetError.self) { try ImageStream(labels: Self.labels, classCount: 10, order: .classes(tasks: 11), seed: 2) }
    }

    @Test func cameraSendsRunsOfOneClassAndNearDuplicateFrames() throws {
        let order = StreamOrder.camera(tasks: 2, runLength: 40, framesPerImage: 4)
        let stream = try ImageStream(labels: Self.labels, classCount: 10, order: order, seed: 3)
        #expect(stream.frames.count == 600 * 4)
        #expect(stream.taskStarts == [0, 1200])
        // Each image is sent as 4 consecutive frames, and never again.
        for start in stride(from: 0, to: stream.frames.count, by: 4) {
            #expect(Set(stream.frames[start..<start + 4].map(\.image)).count == 1)
        }
        #expect(stride(from: 0, to: stream.frames.count, by: 4).map { stream.frames[$0].image }.sorted() == Array(0..<600))
        // Runs of one class are a run's 40 frames: 60 images of a class make one run of 10 images,
        // so runs are 40 frames each, and consecutive runs show other classes while the task has any.
        #expect(Self.runLengths(Self.labels, stream).allSatisfy { $0 % 40 == 0 })
        #expect(Self.runLengths(Self.labels, stream).filter { $0 == 40 }.count >= 50)
        for frame in stream.frames {
            #expect(stream.taskClasses[frame.task].contains(Self.labels[frame.image]))
            #expect(abs(frame.jitter.dx) <= ImageStream.cameraShift && abs(frame.jitter.dy) <= ImageStream.cameraShift)
            #expect(abs(frame.jitter.brightness - 1) <= ImageStream.cameraBrightness)
        }
        #expect(Set(stream.frames.map(\.jitter.dx)).count > 1)
        #expect(throws: DatasetError.self) {
            try ImageStream(labels: Self.labels, classCount: 10, order: .camera(tasks: 2, runLength: 3, framesPerImage: 4), seed: 3)
        }
    }

    @Test func jitterShiftsWithEdgesRepeatedAndScalesBrightness() {
        // A 3×4 gray image with distinct values.
        let image = ArraySlice((0..<12).map { UInt8($0 * 10) })
        #expect(FrameJitter.none.apply(image, height: 3, width: 4, channels: 1) == Array(image))
        let right = FrameJitter(dx: 1, dy: 0, brightness: 1).apply(image, height: 3, width: 4, channels: 1)
        #expect(right == [0, 0, 10, 20, 40, 40, 50, 60, 80, 80, 90, 100])
        let upBrighter = FrameJitter(dx: 0, dy: -1, brightness: 2).apply(image, height: 3, width: 4, channels: 1)
        #expect(upBrighter == [80, 100, 120, 140, 160, 180, 200, 220, 160, 180, 200, 220])
        let saturated = FrameJitter(dx: 0, dy: 0, brightness: 3).apply(image, height: 3, width: 4, channels: 1)
        #expect(saturated.last == 255)
    }

    /// Lengths of the runs of consecutive frames of one class.
    static func runLengths(_ labels: [Int], _ stream: ImageStream) -> [Int] {
        var runs: [Int] = []
        var previous: Int?
        for frame in stream.frames {
            let label = labels[frame.image]
            if label == previous { runs[runs.count - 1] += 1 } else { runs.append(1) }
            previous = label
        }
        return runs
    }
}
