// From the operator's configuration (TOML, environment, --set) to the daemon's parts: the one
// direction a setting travels (its default came from these parts, GLFDConfiguration+Keys.swift).
import Daemon
import Foundation
import GLF
import GLFDClient
import Index
import Neural
import Protocol
import Store

extension DaemonSettings {
    public init(_ c: GLFDConfiguration) throws {
        self.init(stateDirectory: URL(fileURLWithPath: c.paths.stateDirectory))
        store = StoreConfiguration(
            directory: c.paths.store,
            canonical: CanonicalShape(side: c.store.canonicalSide, channels: c.store.channels),
            durability: c.store.durability == .fast ? .syncOnDemand : .syncOnCommit,
            initialMapSize: c.store.initialMapMiB << 20, maxMapSize: c.store.maxMapMiB << 20,
            maxItems: c.store.maxItems > 0 ? c.store.maxItems : nil,
            maxBytes: c.store.maxBytes > 0 ? c.store.maxBytes : nil,
            replay: ReplayConfiguration(policy: c.store.replayPolicy,
                                        capacity: c.store.replayCapacity, seed: UInt64(c.training.seed)))
        modelsDirectory = URL(fileURLWithPath: c.paths.models)

        server.requestEndpoint = c.server.requestEndpoint
        server.announceEndpoint = c.server.announceEndpoint
        server.sendHighWaterMark = Int32(clamping: c.server.sendHighWaterMark)
        server.receiveHighWaterMark = Int32(clamping: c.server.receiveHighWaterMark)
        server.maxInflightIngestsPerClient = c.server.maxInflightIngestsPerClient
        server.limits.maxRequestBytes = c.server.maxMessageBytes
        if c.security.curve {
            server.curve = try CurveSettings.load(secretKeyFile: c.security.serverSecretKeyFile,
                                                  allowedClientsFile: c.security.allowedClientsFile)
        }

        var training = TrainingConfig()
        training.method = c.training.method
        training.encoder = EncoderConfig(inputChannels: c.store.channels, imageSize: c.store.canonicalSide, width: c.training.width)
        training.adc = c.training.adc ? try AdaptiveDistributionCalibration(c.training) : nil
        try training.adc?.validate(batch: c.training.batch)
        training.batch = c.training.batch
        training.optimiser.kind = c.training.optimiser
        training.optimiser.learningRate = Float(c.training.learningRate)
        training.optimiser.weightDecay = Float(c.training.weightDecay)
        training.optimiser.warmupSteps = c.training.warmupSteps
        training.optimiser.totalSteps = nil  // a daemon never ends: constant rate after warm-up
        training.averageDecay = c.training.averageDecay > 0 ? Float(c.training.averageDecay) : nil
        training.workers = c.training.threads
        training.seed = UInt64(c.training.seed)
        self.training = training
        trainingEnabled = c.training.enabled
        trainer.updatesPerImage = c.training.updatesPerImage
        trainer.minItems = c.training.minItems
        trainer.nice = Int32(clamping: c.training.nice)
        trainer.publishEverySteps = c.models.publishEverySteps
        trainer.publishEverySeconds = Double(c.models.publishEverySeconds)
        trainer.publishWhenIdleSeconds = Double(c.models.publishWhenIdleSeconds)
        trainer.priorFromPreviousVersion = c.training.lpmPrior == .previous
        keepVersions = c.models.keep
        jetStream.servers = c.ingest.jetStreamServers.split(separator: ",").map(String.init)
        jetStream.stream = c.ingest.jetStreamStream
        jetStream.subjectPrefix = c.ingest.jetStreamSubjectPrefix
        jetStream.consumer = c.ingest.jetStreamConsumer
        jetStream.replicas = c.ingest.jetStreamReplicas
        jetStream.batch = c.ingest.jetStreamBatch
        jetStream.ackWaitSeconds = c.ingest.jetStreamAckWaitSeconds
        replica.follow = c.replica.follow
        replica.pollSeconds = c.replica.pollSeconds
        if !c.replica.trainerPublicKeyFile.isEmpty {
            replica.curve = ClientCurve(serverPublicKey: try CurveSettings.key(in: c.replica.trainerPublicKeyFile),
                                        secretKey: try CurveSettings.key(in: c.replica.secretKeyFile))
        }
        if replica.isEnabled && trainingEnabled {
            throw ConfigurationError(.invalidValue, "replica.follow is set, so this daemon is a replica: it serves its trainer's "
                                     + "versions and does not train; set training.enabled = false")
        }

        catalog.approximate = c.index.approximate
        catalog.approximateMinItems = c.index.approximateMinItems
        catalog.buildThreads = c.index.buildThreads
        catalog.rebuildShare = c.index.rebuildShare
        catalog.drift.window = c.index.driftWindow
        catalog.drift.neighbour = c.index.driftNeighbour
        catalog.drift.alertScore = c.index.driftAlertScore
        catalog.hnsw = HNSWParameters(m: c.index.hnswM, efConstruction: c.index.hnswEFConstruction, efSearch: c.index.hnswEFSearch)
    }
}

extension AdaptiveDistributionCalibration {
    /// ADC's settings from the `training.adc_*` keys; a combination ADC refuses (a tied scale with
    /// ρ ≤ 2, a perplexity ≤ 1) is an error naming the setting.
    public init(_ t: GLFDConfiguration.Training) throws {
        self.init(bandwidth: t.adcBandwidth, sigma: Float(t.adcSigma),
                  perplexity: Float(t.adcPerplexity), distanceScale: Float(t.adcDistanceScale), rho: Float(t.adcRho),
                  tiedScale: t.adcScale == .tied, entropyWeights: t.adcEntropyWeights,
                  lpmDirection: t.lpmDirection, inputTemperature: Float(t.adcInputTemperature),
                  dcmWeight: Float(t.adcDCMWeight), lpmWeight: Float(t.adcLPMWeight))
        try validate()
    }
}
