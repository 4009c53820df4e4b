using System.Collections.Concurrent;
using Gateway.Routing;
using MQTTnet;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// Charges what MQTTnet queues for each session to the gateway's <see cref="MemoryBudget"/>:
/// a message is charged when it is queued for a session and released when it is written to
/// the client, dropped from the queue, or the session ends. MQTTnet does not say what a
/// queue holds at each step, so every so often the accounts are set against the queues'
/// real lengths (<see cref="Reconcile"/>): an account whose queue is empty is released whole.
/// </summary>
internal sealed class SessionMemory(MemoryBudget budget)
{
    // Per queued copy: MQTTnet's publish packet, its packet-bus item and the completion source
    // it carries, measured at about 200 bytes on x64; the payload array is shared between the
    // copies of one message, so charging it to each copy overstates, on the safe side.
    private const int PerMessageOverhead = 256;

    private readonly ConcurrentDictionary<string, Account> _sessions = new(StringComparer.Ordinal);

    public MemoryBudget Budget => budget;

    public static long SizeOf(MqttApplicationMessage message) =>
        PerMessageOverhead + message.Payload.Length + (2L * message.Topic.Length);

    public static long SizeOf(MqttPublishPacket packet) =>
        PerMessageOverhead + packet.Payload.Length + (2L * (packet.Topic?.Length ?? 0));

    /// <summary>
    /// Charges a message queued for <paramref name="clientId"/>. <paramref name="paced"/>: the
    /// session's client is connected and keeping up, so flow control bounds what it holds and
    /// the message is charged without a check. Otherwise QoS 0 must fit in half the budget and
    /// QoS 1/2 (whose publishers are refused once the budget is full) in twice it; false when
    /// it does not, and the message is not to be queued.
    /// </summary>
    public bool TryCharge(string clientId, long bytes, MqttQualityOfServiceLevel qos, bool paced)
    {
        if (paced)
        {
            budget.Reserve(bytes);
        }
        else if (!(qos == MqttQualityOfServiceLevel.AtMostOnce ? budget.TryReserveDroppable(bytes) : budget.TryReserveKept(bytes)))
        {
            return false;
        }

        _sessions.GetOrAdd(clientId, static _ => new Account()).Add(bytes);
        return true;
    }

    /// <summary>A message queued for <paramref name="clientId"/> has left the queue.</summary>
    public void Release(string clientId, long bytes)
    {
        if (_sessions.TryGetValue(clientId, out var account))
        {
            budget.Release(account.Take(bytes));
        }
    }

    /// <summary>The session has ended: whatever it still held is released.</summary>
    public void ReleaseSession(string clientId)
    {
        if (_sessions.TryRemove(clientId, out var account))
        {
            budget.Release(account.TakeAll());
        }
    }

    /// <summary>
    /// Sets the accounts against the sessions' queue lengths: a session that is gone or has an
    /// empty queue holds nothing. Keeps the total honest whatever MQTTnet did in between
    /// (a resend after a reconnect, a session replaced while a message was being queued).
    /// </summary>
    public void Reconcile(IReadOnlyDictionary<string, long> pendingBySession)
    {
        foreach (var (clientId, account) in _sessions)
        {
            if (!pendingBySession.TryGetValue(clientId, out var pending))
            {
                ReleaseSession(clientId);
            }
            else if (pending == 0)
            {
                budget.Release(account.TakeAll());
            }
        }
    }

    private sealed class Account
    {
        private long _bytes;

        public void Add(long bytes) => Interlocked.Add(ref _bytes, bytes);

        // Never below zero: a message released twice (resent after a reconnect) takes only
        // what the account still has.
        public long Take(long bytes)
        {
            var held = Interlocked.Read(ref _bytes);
            while (true)
            {
                var take = Math.Min(held, bytes);
                var seen = Interlocked.CompareExchange(ref _bytes, held - take, held);
                if (seen == held)
                {
                    return take;
                }

                held = seen;
            }
        }

        public long TakeAll() => Interlocked.Exchange(ref _bytes, 0);
    }
}
