using System.Collections;
using System.Diagnostics.Metrics;
using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.AspNetCore;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// Bridges MQTTnet's server to the router. Every MQTT publish is taken out of MQTTnet's own
/// dispatch and routed to <c>amq.topic</c>; MQTT subscriptions are bindings from
/// <c>amq.topic</c> to one adapter queue, so a message reaches the adapter once however many
/// MQTT clients want it. The adapter injects each delivery back into MQTTnet, which fans it
/// out to the matching sessions with their QoS, retain-as-published and no-local options.
/// </summary>
public sealed partial class MqttAdapter : IHostedService, IRetainedMessageSink, IAsyncDisposable
{
    /// <summary>The adapter's own queue; internal, so named outside the user namespace.</summary>
    public const string DeliveryQueue = "gateway.mqtt.deliveries";

    private const int DeliveryBuffer = 4096;
    private const int DeliveryFlowLimit = 16_384;
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan DrainPollInterval = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan ReconcileInterval = TimeSpan.FromSeconds(10);

    // Marks messages the adapter injects, so the publish interceptor lets them through.
    private readonly IDictionary _injected = new Hashtable(0);
    private readonly IMessageRouter _router;
    private readonly ILogger<MqttAdapter> _logger;
    private readonly MqttOptions _options;
    private readonly SubscriptionBindings _subscriptions;
    private readonly SessionMemory _memory;
    private readonly SubscriberFlow _flow;
    private readonly IRetainedMessageStore? _retainedStore;
    private readonly CancellationTokenSource _stopping = new();
    private readonly MqttMetrics? _metrics;
    private readonly RetainedMetrics? _retainedMetrics;
    private QueueConsumer? _consumer;
    private Task _pump = Task.CompletedTask;
    private Task _reconcile = Task.CompletedTask;
    private long _refusedForMemoryLogged;
    private Task? _shutdown;

    public MqttAdapter(
        IMessageRouter router,
        MqttConnectionHandler connectionHandler,
        IOptions<MqttOptions> options,
        ILoggerFactory loggerFactory,
        IHostApplicationLifetime lifetime,
        MemoryBudget memoryBudget,
        IRetainedMessageStore? retainedStore = null,
        IMeterFactory? meters = null)
    {
        _router = router;
        _retainedStore = retainedStore;
        _logger = loggerFactory.CreateLogger<MqttAdapter>();
        _options = options.Value;
        _memory = new SessionMemory(memoryBudget);
        _flow = new SubscriberFlow(_memory, Counters, _logger);
        RetainedBudget = new RetainedBudget(_options.MaxRetainedMessages, _options.MaxRetainedBytes);
        var serverOptions = new MqttServerOptionsBuilder()
            .WithPersistentSessions()
            .WithMaxPendingMessagesPerClient(_options.MaxPendingMessagesPerClient)
            .WithPendingMessagesOverflowStrategy(MQTTnet.Server.MqttPendingMessagesOverflowStrategy.DropOldestQueuedMessage)
            .Build();
        Server = new MqttServerFactory().CreateMqttServer(serverOptions, [connectionHandler], new MqttNetLoggerBridge(loggerFactory));
        _subscriptions = new SubscriptionBindings(router, _logger);
        Server.ValidatingConnectionAsync += OnValidatingConnectionAsync;
        Server.InterceptingPublishAsync += OnInterceptingPublishAsync;
        Server.LoadingRetainedMessageAsync += OnLoadingRetainedMessagesAsync;
        Server.RetainedMessagesClearedAsync += OnRetainedMessagesClearedAsync;
        Server.ClientSubscribedTopicAsync += e => _subscriptions.AddAsync(e.ClientId, e.TopicFilter.Topic);
        Server.ClientUnsubscribedTopicAsync += e => _subscriptions.RemoveAsync(e.ClientId, e.TopicFilter);
        Server.SessionDeletedAsync += e => _subscriptions.RemoveClientAsync(e.Id);
        Server.SessionDeletedAsync += e =>
        {
            _memory.ReleaseSession(e.Id);
            return Task.CompletedTask;
        };
        Server.ClientConnectedAsync += _flow.OnConnectedAsync;
        Server.ClientDisconnectedAsync += _flow.OnDisconnectedAsync;
        Server.InterceptingClientEnqueueAsync += _flow.OnEnqueueAsync;
        Server.InterceptingOutboundPacketAsync += OnOutboundPacketAsync;
        Server.ClientConnectedAsync += PublishAcks.OnConnectedAsync;
        Server.InterceptingInboundPacketAsync += PublishAcks.OnInboundPacketAsync;
        Server.QueuedApplicationMessageOverwrittenAsync += _flow.OnOverwrittenAsync;
        _metrics = meters is null ? null : new MqttMetrics(meters, this);
        _retainedMetrics = meters is null ? null : new RetainedMetrics(meters, this);

        // Disconnect MQTT clients as soon as shutdown starts, so Kestrel's graceful stop does not
        // wait for long-lived connections.
        lifetime.ApplicationStopping.Register(() => _shutdown ??= ShutdownAsync());
    }

    /// <summary>The MQTTnet server (sessions, retained messages, clients).</summary>
    public MqttServer Server { get; }

    internal MqttCounters Counters { get; } = new();

    internal int ConnectedClients => _flow.ConnectedClients;

    internal int ClientsBehind => _flow.ClientsBehind;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var queue = _router.DeclareQueue(DeliveryQueue, new QueueOptions { FlowLimit = DeliveryFlowLimit });
        _subscriptions.Queue = queue.Name;
        _consumer = queue.AddConsumer(new ConsumerOptions { AutoAck = true, Prefetch = DeliveryBuffer, Tag = "mqtt" });
        await Server.StartAsync();
        _pump = Task.Run(() => PumpAsync(_consumer, _stopping.Token), CancellationToken.None);
        _reconcile = ReconcileAsync(_stopping.Token);
        MqttLog.Started(_logger, _options.MaxPacketSize);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _shutdown ??= ShutdownAsync();
        await _shutdown.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        _shutdown ??= ShutdownAsync();
        await _shutdown;
        Server.Dispose();
        _stopping.Dispose();
        _metrics?.Dispose();
        _retainedMetrics?.Dispose();
    }

    private async Task ShutdownAsync()
    {
        // Hand over what is already routed to MQTT subscribers, then disconnect everyone. Both
        // waits are bounded so a stuck subscriber cannot hold up the stop.
        if (_consumer is { } consumer && _router.TryGetQueue(DeliveryQueue, out var queue))
        {
            MqttLog.Stopping(_logger, queue.ReadyCount + consumer.Buffered);
            using var drain = new CancellationTokenSource(DrainTimeout);
            try
            {
                while ((queue.ReadyCount > 0 || consumer.Buffered > 0) && !_pump.IsCompleted)
                {
                    await Task.Delay(DrainPollInterval, drain.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }

            consumer.Dispose(); // ends the pump once it has injected the delivery in hand
        }

        try
        {
            await _pump.WaitAsync(DrainTimeout);
        }
        catch (TimeoutException)
        {
            await _stopping.CancelAsync();
        }
        catch (OperationCanceledException)
        {
        }

        await _stopping.CancelAsync();
        await _reconcile;
        if (Server.IsStarted)
        {
            await Server.StopAsync(new MqttServerStopOptions
            {
                DefaultClientDisconnectOptions = new MqttServerClientDisconnectOptions { ReasonCode = MqttDisconnectReasonCode.ServerShuttingDown },
            });
        }
    }

    private Task OnOutboundPacketAsync(InterceptingPacketEventArgs e)
    {
        switch (e.Packet)
        {
            case MQTTnet.Packets.MqttPublishPacket publish:
                Counters.OnSent();
                _flow.OnPublishSent(e, publish);
                break;
            case MQTTnet.Packets.MqttSubAckPacket { ReasonCodes.Count: 0 }:
                // MQTT-3.8.3-3: a SUBSCRIBE with no topic filter is malformed, and MQTTnet cannot
                // encode its empty SUBACK (its send loop would fault). The packet guard refuses the
                // plain form; one MQTTnet's lenient decoder reads as empty ends here the same way.
                e.ProcessPacket = false;
                _ = DisconnectAsync(e.ClientId, MqttDisconnectReasonCode.ProtocolError);
                break;
            case MQTTnet.Packets.MqttConnAckPacket connAck:
                // MQTT 5.0 section 3.2.2.3.6: tell clients the limit the packet guard enforces.
                connAck.MaximumPacketSize = (uint)_options.MaxPacketSize;
                break;
            case MQTTnet.Packets.MqttPubAckPacket pubAck when PublishAcks.TryTakeCommit(e.SessionItems, pubAck.PacketIdentifier, out var acks, out var committed):
                return AckWhenCommittedAsync(e, acks, committed);
            case MQTTnet.Packets.MqttPubRecPacket pubRec when PublishAcks.TryTakeCommit(e.SessionItems, pubRec.PacketIdentifier, out var acks, out var committed):
                return AckWhenCommittedAsync(e, acks, committed);
        }

        return Task.CompletedTask;
    }

    // Holds a PUBACK/PUBREC until its publish is on disk. If the store failed, MQTT 5 gets the
    // reason and MQTT 3.1.1 (which reads any PUBACK as success) gets none and loses the connection.
    private async Task AckWhenCommittedAsync(InterceptingPacketEventArgs e, PublishAcks acks, Task committed)
    {
        try
        {
            await committed.WaitAsync(e.CancellationToken);
            acks.Sending();
        }
        catch (OperationCanceledException) when (e.CancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // Whatever the store threw, the publisher must not be told it is safe.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            MqttLog.CommitFailed(_logger, e.ClientId, ex);
            Counters.OnRefused();
            if (e.SessionItems[ProtocolVersionKey] is MQTTnet.Formatter.MqttProtocolVersion.V500)
            {
                switch (e.Packet)
                {
                    case MQTTnet.Packets.MqttPubAckPacket pubAck:
                        pubAck.ReasonCode = MqttPubAckReasonCode.UnspecifiedError;
                        break;
                    case MQTTnet.Packets.MqttPubRecPacket pubRec:
                        pubRec.ReasonCode = MqttPubRecReasonCode.UnspecifiedError;
                        break;
                }
            }
            else
            {
                e.ProcessPacket = false;
                _ = DisconnectAsync(e.ClientId); // not awaited on the connection's own send loop
            }
        }
    }

    private async Task DisconnectAsync(string clientId, MqttDisconnectReasonCode reason = MqttDisconnectReasonCode.UnspecifiedError)
    {
        try
        {
            await Server.DisconnectClientAsync(clientId, new MqttServerClientDisconnectOptions { ReasonCode = reason });
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or OperationCanceledException)
        {
            MqttLog.DisconnectFailed(_logger, clientId, ex.Message);
        }
    }

    // MQTT 3.1.1 section 3.1.3.1 and 5.0 section 3.1.3.1: a client may leave its id empty and
    // have the server assign one (3.1.1: only with a clean session). MQTTnet assigns ids for
    // MQTT 5 only, so for 3.1.1 the id is set on the CONNECT packet before MQTTnet checks it.
    private static Task OnValidatingConnectionAsync(ValidatingConnectionEventArgs e)
    {
        e.SessionItems[ProtocolVersionKey] = e.ProtocolVersion;
        if (!string.IsNullOrEmpty(e.ClientId))
        {
            return Task.CompletedTask;
        }

        var assigned = "gw-" + Guid.NewGuid().ToString("N");
        switch (e.ProtocolVersion)
        {
            case MQTTnet.Formatter.MqttProtocolVersion.V500:
                e.AssignedClientIdentifier = assigned;
                break;
            case MQTTnet.Formatter.MqttProtocolVersion.V311 when e.CleanSession != false:
                ConnectPacket(e).ClientId = assigned;
                break;
            default:
                e.ReasonCode = MqttConnectReasonCode.ClientIdentifierNotValid;
                break;
        }

        return Task.CompletedTask;
    }

    // MQTTnet keeps the CONNECT packet private; its version is pinned centrally and the
    // empty-client-id tests fail loudly if this field ever moves.
    [System.Runtime.CompilerServices.UnsafeAccessor(System.Runtime.CompilerServices.UnsafeAccessorKind.Field, Name = "_connectPacket")]
    private static extern ref MQTTnet.Packets.MqttConnectPacket ConnectPacket(ValidatingConnectionEventArgs e);

    private const string ProtocolVersionKey = "gateway.protocol-version";

    private async Task OnInterceptingPublishAsync(InterceptingPublishEventArgs e)
    {
        if (ReferenceEquals(e.SessionItems, _injected))
        {
            return; // our own delivery: MQTTnet fans it out to its sessions
        }

        e.ProcessPublish = false;
        Counters.OnReceived();
        var application = e.ApplicationMessage;
        ushort packetId = 0;
        var acks = application.QualityOfServiceLevel > MqttQualityOfServiceLevel.AtMostOnce ? PublishAcks.Take(e.SessionItems, out packetId) : null;
        try
        {
            if (acks is not null && _memory.Budget.IsFull)
            {
                // A message promised to its publisher must not be dropped later for want of
                // memory: while the budget is full, QoS 1/2 publishes are refused instead.
                RefuseForMemory(e);
                return;
            }

            var message = MqttMessageMapper.ToGateway(application, e.ClientId, e.UserName);
            if (application.Retain && !await RetainPublishAsync(e, message))
            {
                return;
            }

            var ticket = _router.Publish(message);
            if (ticket.Status == RouteStatus.Rejected)
            {
                // A full buffer with reject-publish, or the disk: MQTT 5 says so (0x97 quota exceeded);
                // 3.1.1 has no way to, so the publisher is not acknowledged and resends after reconnecting.
                MqttLog.PublishRejected(_logger, application.Topic, e.ClientId, ticket.Refusal);
                Refuse(e, MqttPubAckReasonCode.QuotaExceeded);
                return;
            }

            PublishAcks? waiting = null;
            if (ticket.Committed is { } committed)
            {
                if (acks is not null)
                {
                    acks.Add(packetId, committed); // its PUBACK/PUBREC waits in OnOutboundPacketAsync
                    waiting = acks;
                }
                else
                {
                    await committed.WaitAsync(e.CancellationToken);
                }
            }

            if (ticket.FlowBlocked)
            {
                await ticket.WaitForFlowAsync(e.CancellationToken); // stop reading this connection
            }

            e.Response.ReasonCode = ticket.Status == RouteStatus.Unroutable ? MqttPubAckReasonCode.NoMatchingSubscribers : MqttPubAckReasonCode.Success;
            waiting?.Released();
        }
        catch (OperationCanceledException) when (e.CancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            MqttLog.PublishFailed(_logger, application.Topic, e.ClientId, ex);
            Refuse(e, MqttPubAckReasonCode.UnspecifiedError);
        }
    }

    // Never acknowledge a message that is not safe: MQTT 5 gets the reason, MQTT 3.1.1 (which
    // would read any PUBACK as success) loses the connection instead.
    private void Refuse(InterceptingPublishEventArgs e, MqttPubAckReasonCode reason)
    {
        Counters.OnRefused();
        e.Response.ReasonCode = reason;
        if (e.ApplicationMessage.QualityOfServiceLevel != MQTTnet.Protocol.MqttQualityOfServiceLevel.AtMostOnce &&
            e.SessionItems[ProtocolVersionKey] is not MQTTnet.Formatter.MqttProtocolVersion.V500)
        {
            e.CloseConnection = true;
        }
    }

    private void RefuseForMemory(InterceptingPublishEventArgs e)
    {
        Refuse(e, MqttPubAckReasonCode.QuotaExceeded);
        var refused = _memory.Budget.OnRefused();
        if (refused >= 2 * Interlocked.Read(ref _refusedForMemoryLogged))
        {
            Interlocked.Exchange(ref _refusedForMemoryLogged, refused);
            MqttLog.RefusedForMemory(_logger, _memory.Budget.Limit / (1024 * 1024), (int)e.ApplicationMessage.QualityOfServiceLevel, e.ApplicationMessage.Topic, e.ClientId, refused);
        }
    }

    // Sets the sessions' memory accounts against MQTTnet's queue lengths now and then.
    private async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(ReconcileInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var sessions = await Server.GetSessionsAsync();
                var pending = new Dictionary<string, long>(sessions.Count, StringComparer.Ordinal);
                foreach (var session in sessions)
                {
                    pending[session.Id] = session.PendingApplicationMessagesCount;
                }

                _memory.Reconcile(pending);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    // Ends when the consumer is disposed (its channel completes) or, as a last resort, when
    // stopping is cancelled.
    private async Task PumpAsync(QueueConsumer consumer, CancellationToken cancellationToken)
    {
        try
        {
            while (await consumer.WaitToReadAsync(cancellationToken))
            {
                while (consumer.TryRead(out var delivery))
                {
                    await InjectAsync(delivery.Message, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task InjectAsync(GatewayMessage message, CancellationToken cancellationToken)
    {
        try
        {
            var injected = new InjectedMqttApplicationMessage(MqttMessageMapper.ToMqtt(message))
            {
                CustomSessionItems = _injected,
                SenderClientId = message.Origin.Protocol == MqttMessageMapper.Protocol ? message.Origin.ConnectionId ?? string.Empty : string.Empty,
                SenderUserName = message.Origin.User,
            };
            await Server.InjectApplicationMessage(injected, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            MqttLog.DeliveryFailed(_logger, message.RoutingKey, ex);
        }
    }
}
