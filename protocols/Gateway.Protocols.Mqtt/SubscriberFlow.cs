using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// What happens to a message MQTTnet is about to queue for a subscriber, in the spirit of
/// RabbitMQ's credit flow and mosquitto's per-client queue:
/// <list type="bullet">
/// <item>A connected subscriber that keeps up paces the publishers: while it has more than
/// <see cref="PendingLimit"/> packets queued and is still reading, the delivery pump waits, so
/// the adapter's queue fills and its flow limit makes publishers wait in turn (TCP for QoS 0,
/// later PUBACKs for QoS 1). Nothing is dropped for it.</item>
/// <item>A subscriber that stays that far behind for <see cref="StallTime"/> and reads fewer than
/// half the limit's worth of messages in that time (a slow link, or not reading at all) is left
/// behind: the pump no longer waits for it, so one slow reader never holds the others to its
/// pace. Its messages queue in its session, up to
/// <c>Mqtt:MaxPendingMessagesPerClient</c> (beyond which MQTTnet drops the oldest) and within
/// the memory budget. It paces publishers again once it has caught up to half the limit.</item>
/// <item>Offline persistent sessions and subscribers left behind are charged to the memory
/// budget (<see cref="SessionMemory"/>); a message that does not fit is not queued for that
/// session, and is counted and logged.</item>
/// </list>
/// Never throws into MQTTnet: an exception from this interceptor would end MQTTnet's fan-out of
/// the message, and sessions after this one would never get it.
/// </summary>
internal sealed class SubscriberFlow(SessionMemory memory, MqttCounters counters, ILogger logger)
{
    public const int PendingLimit = 2048;
    public static readonly TimeSpan StallTime = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Client> _clients = new(StringComparer.Ordinal);
    private long _droppedForMemoryLogged;

    public int ConnectedClients => _clients.Count;

    /// <summary>Connected subscribers the pump is not waiting for: they fell behind and have not caught up.</summary>
    public int ClientsBehind
    {
        get
        {
            var behind = 0;
            foreach (var (_, client) in _clients)
            {
                behind += client.IsBehind ? 1 : 0;
            }

            return behind;
        }
    }

    public Task OnConnectedAsync(ClientConnectedEventArgs e)
    {
        var client = new Client(e.ClientId, logger);
        _clients[e.ClientId] = client;
        e.SessionItems[typeof(SubscriberFlow)] = client;
        return Task.CompletedTask;
    }

    public Task OnDisconnectedAsync(ClientDisconnectedEventArgs e)
    {
        if (e.DisconnectType != MqttClientDisconnectType.Takeover && _clients.TryRemove(e.ClientId, out var client))
        {
            client.Release();
        }

        return Task.CompletedTask;
    }

    // Runs inside the pump's injection (and MQTTnet's retained delivery), once per receiving session.
    public Task OnEnqueueAsync(InterceptingClientApplicationMessageEnqueueEventArgs e)
    {
        _clients.TryGetValue(e.ReceiverClientId, out var client);
        var paced = client is { IsBehind: false };
        if (!memory.TryCharge(e.ReceiverClientId, SessionMemory.SizeOf(e.ApplicationMessage), e.ApplicationMessage.QualityOfServiceLevel, paced))
        {
            e.AcceptEnqueue = false;
            var dropped = counters.OnDroppedForMemory();
            if (dropped >= 2 * Interlocked.Read(ref _droppedForMemoryLogged))
            {
                Interlocked.Exchange(ref _droppedForMemoryLogged, dropped);
                MqttLog.DroppedForMemory(logger, e.ReceiverClientId, memory.Budget.Limit / (1024 * 1024), dropped);
            }

            return Task.CompletedTask;
        }

        return client?.EnqueuedAsync() ?? Task.CompletedTask;
    }

    /// <summary>MQTTnet has written a PUBLISH to a subscriber.</summary>
    public void OnPublishSent(InterceptingPacketEventArgs e, MQTTnet.Packets.MqttPublishPacket packet)
    {
        memory.Release(e.ClientId, SessionMemory.SizeOf(packet));
        if (e.SessionItems?[typeof(SubscriberFlow)] is Client client)
        {
            client.Left(sent: true);
        }
    }

    /// <summary>MQTTnet dropped the oldest message of a full session queue.</summary>
    public Task OnOverwrittenAsync(QueueMessageOverwrittenEventArgs e)
    {
        counters.OnDropped();
        if (e.Packet is MQTTnet.Packets.MqttPublishPacket packet)
        {
            memory.Release(e.ReceiverClientId, SessionMemory.SizeOf(packet));
        }

        if (_clients.TryGetValue(e.ReceiverClientId, out var client))
        {
            client.Left(sent: false);
        }

        return Task.CompletedTask;
    }

    private sealed class Client(string clientId, ILogger logger)
    {
        private readonly Lock _sync = new();
        private int _pending;
        private long _sent;
        private long _lastSent = Environment.TickCount64;
        private bool _behind;
        private TaskCompletionSource? _waiter;

        public bool IsBehind => Volatile.Read(ref _behind);

        public Task EnqueuedAsync()
        {
            lock (_sync)
            {
                _pending++;
                if (_behind || _pending <= PendingLimit)
                {
                    return Task.CompletedTask;
                }

                if (Environment.TickCount64 - _lastSent > StallTime.TotalMilliseconds)
                {
                    FallBehindLocked();
                    return Task.CompletedTask;
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return WaitAsync(_waiter.Task);
            }
        }

        /// <summary>A queued message left the queue: written to the client or dropped.</summary>
        public void Left(bool sent)
        {
            lock (_sync)
            {
                _pending = Math.Max(0, _pending - 1);
                if (sent)
                {
                    _sent++;
                    _lastSent = Environment.TickCount64;
                }

                if (_pending > PendingLimit / 2)
                {
                    return;
                }

                if (_behind)
                {
                    _behind = false;
                    MqttLog.SubscriberCaughtUp(logger, clientId);
                }

                _waiter?.TrySetResult();
                _waiter = null;
            }
        }

        public void Release()
        {
            lock (_sync)
            {
                _waiter?.TrySetResult();
                _waiter = null;
            }
        }

        // Bounded: a client that reads fewer than half the limit's worth of messages in a stall
        // time (a slow link, or none at all) is left behind. One that reads faster but was
        // starved of CPU for a moment is still keeping up, and is waited for again.
        private async Task WaitAsync(Task caughtUp)
        {
            long sentBefore;
            lock (_sync)
            {
                sentBefore = _sent;
            }

            while (await Task.WhenAny(caughtUp, Task.Delay(StallTime)) != caughtUp)
            {
                lock (_sync)
                {
                    if (caughtUp.IsCompleted)
                    {
                        return;
                    }

                    if (_sent - sentBefore < PendingLimit / 2)
                    {
                        FallBehindLocked();
                        return;
                    }

                    sentBefore = _sent;
                }
            }
        }

        private void FallBehindLocked()
        {
            if (_behind)
            {
                return;
            }

            _behind = true;
            _waiter?.TrySetResult();
            _waiter = null;
            MqttLog.SubscriberBehind(logger, clientId, _pending, StallTime.TotalSeconds);
        }
    }
}
