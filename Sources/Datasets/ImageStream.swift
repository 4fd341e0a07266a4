// A labelled collection as a stream: the order its images arrive in (issue 15, method.md §4).
//
//   iid       every image once, shuffled: the reference a continual learner is measured against
//   classes   class-incremental: the classes split into K tasks (shuffled, as equal as they go),
//             each task's images shuffled and sent before the next task's
//   camera    what a camera or a crawler sends: the tasks of `classes`, and inside a task runs of
//             one class (a scene) of `runLength` frames; each image of a run is sent as
//             `framesPerImage` consecutive frames that differ by a small shift and a brightness
//             change, as consecutive frames of a still scene do
//
// A frame names an image of the collection and the jitter to apply to it (none outside `camera`).
// Every image of the collection is in the stream exactly once (`camera`: `framesPerImage` times in
// a row), so the stream's length is fixed by the order, and what differs between orders is only
// where each image sits: the comparison the issue asks for.
import Neural

public enum StreamOrder: Sendable, Equatable, CustomStringConvertible {
    case iid
    case classes(tasks: Int)
    case camera(tasks: Int, runLength: Int, framesPerImage: Int)

    public var description: String {
        switch self {
        case .iid: "iid"
        case .classes(let tasks): "classes (\(tasks) tasks)"
        case .camera(let tasks, let runLength, let frames):
            "camera (\(tasks) tasks, runs of \(runLength) frames, \(frames) frames per image)"
        }
    }
}

/// How a frame differs from the image it shows: a shift (pixels, edges repeated) and a brightness
/// factor. The identity outside the `camera` order.
public struct FrameJitter: Sendable, Equatable {
    public var dx: Int, dy: Int
    public var brightness: Float
    public static let none = FrameJitter(dx: 0, dy: 0, brightness: 1)

    public init(dx: Int, dy: Int, brightness: Float) {
        self.dx = dx
        self.dy = dy
        self.brightness = brightness
    }

    /// The frame's pixels from an image's [height, width, channels] UInt8 pixels: output pixel
    /// (y, x) is input (y − dy, x − dx), clamped to the image, times the brightness.
    public func apply(_ pixels: ArraySlice<UInt8>, height: Int, width: Int, channels: Int) -> [UInt8] {
        precondition(pixels.count == height * width * channels)
        if self == .none { return Array(pixels) }
        var frame = [UInt8](repeating: 0, count: pixels.count)
        let base = pixels.startIndex
        for y in 0..<height {
            let sy = min(max(y - dy, 0), height - 1)
            for x in 0..<width {
                let sx = min(max(x - dx, 0), width - 1)
                for c in 0..<channels {
                    let value = Float(pixels[base + (sy * width + sx) * channels + c]) * brightness
                    frame[(y * width + x) * channels + c] = UInt8(min(max(value.rounded(), 0), 255))
                }
            }
        }
        return frame
    }
}

public struct StreamFrame: Sendable, Equatable {
    /// The image's index in the collection.
    public var image: Int
    /// The task the frame belongs to (0 for `iid`).
    public var task: Int
    public var jitter: FrameJitter
}

public struct ImageStream: Sendable {
    public let order: StreamOrder
    public let frames: [StreamFrame]
    /// Each task's classes, in the order the tasks arrive (`iid`: one task of every class).
    public let taskClasses: [[Int]]
    /// The index of each task's first frame.
    public let taskStarts: [Int]

    /// The largest shift and brightness change between a camera frame and its image.
    public static let cameraShift = 3
    public static let cameraBrightness: Float = 0.15

    /// `labels` are the collection's, one per image, in 0..<classCount. Deterministic in `seed`.
    public init(labels: [Int], classCount: Int, order: StreamOrder, seed: UInt64) throws(DatasetError) {
        precondition(labels.allSatisfy { (0..<classCount).contains($0) })
        var random = SeededGenerator(seed: seed)
        self.order = order
        switch order {
        case .iid:
            taskClasses = [Array(0..<classCount)]
            frames = Array(labels.indices).shuffled(using: &random).map { StreamFrame(image: $0, task: 0, jitter: .none) }
        case .classes(let tasks):
            taskClasses = try Self.split(classCount: classCount, into: tasks, using: &random)
            frames = taskClasses.enumerated().flatMap { task, classes in
                labels.indices.filter { classes.contains(labels[$0]) }.shuffled(using: &random)
                    .map { StreamFrame(image: $0, task: task, jitter: .none) }
            }
        case .camera(let tasks, let runLength, let framesPerImage):
            guard runLength >= framesPerImage, framesPerImage >= 1 else {
                throw DatasetError(message: "camera order: a run (\(runLength) frames) must hold at least one image's \(framesPerImage) frames")
            }
            taskClasses = try Self.split(classCount: classCount, into: tasks, using: &random)
            var frames: [StreamFrame] = []
            for (task, classes) in taskClasses.enumerated() {
                var unsent = Dictionary(uniqueKeysWithValues: classes.map { c in
                    (c, labels.indices.filter { labels[$0] == c }.shuffled(using: &random))
                })
                var previous: Int?
                while let scene = Self.nextScene(unsent: unsent, after: previous, using: &random) {
                    let images = unsent[scene]!.prefix(runLength / framesPerImage)
                    unsent[scene]!.removeFirst(images.count)
                    previous = scene
                    for image in images {
                        for _ in 0..<framesPerImage {
                            frames.append(StreamFrame(image: image, task: task, jitter: Self.cameraJitter(using: &random)))
                        }
                    }
                }
            }
            self.frames = frames
        }
        var starts: [Int] = []
        for (index, frame) in frames.enumerated() where frame.task == starts.count { starts.append(index) }
        taskStarts = starts
    }

    /// Classes shuffled, then dealt into `tasks` consecutive groups whose sizes differ by at most one.
    private static func split(classCount: Int, into tasks: Int, using random: inout SeededGenerator) throws(DatasetError) -> [[Int]] {
        guard (1...classCount).contains(tasks) else {
            throw DatasetError(message: "\(tasks) tasks of \(classCount) classes: between 1 and \(classCount) tasks")
        }
        let classes = Array(0..<classCount).shuffled(using: &random)
        return (0..<tasks).map { task in Array(classes[task * classCount / tasks ..< (task + 1) * classCount / tasks]) }
    }

    /// A class with images left, other than the previous scene's while another has some.
    private static func nextScene(unsent: [Int: [Int]], after previous: Int?, using random: inout SeededGenerator) -> Int? {
        let left = unsent.keys.filter { !unsent[$0]!.isEmpty }.sorted()
        let others = left.filter { $0 != previous }
        return (others.isEmpty ? left : others).randomElement(using: &random)
    }

    private static func cameraJitter(using random: inout SeededGenerator) -> FrameJitter {
        FrameJitter(dx: Int.random(in: -cameraShift...cameraShift, using: &random),
                    dy: Int.random(in: -cameraShift...cameraShift, using: &random),
                    brightness: 1 + Float.random(in: -cameraBrightness...cameraBrightness, using: &random))
    }
}
