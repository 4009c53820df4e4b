using System.Threading.Channels;
using Gateway.Routing;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace Gateway.Uplinks;

internal sealed partial class MqttUplink
{
    /// <summary>
    /// A session's publishes in flight: slots in send order, packet identifiers of its own, and
    /// the broker's PUBACKs taken straight off the connection's read loop
    /// (<see cref="UplinkChannelAdapter"/>). No task, timer or dispatcher entry per message: an
    /// acknowledgement marks its slot, the confirmed run at the head leaves the queue in one
    /// settlement, and the room it frees is filled from the consumer on the same thread.
    /// </summary>
    /// <remarks>
    /// One thread at a time "drives" (confirms the head, sends into free room); whoever finds the
    /// role taken leaves a request that the driver picks up before it lets go. The driver hands
    /// the role to a continuation when it must wait (a send held back by a full socket, the drain
    /// rate limit, a dead-letter publish), so sends stay in order and nothing blocks the read loop.
    /// </remarks>
    private sealed class PublishWindow : IPublishAcknowledgements
    {
        private const int MaxPacketId = ushort.MaxValue;

        private readonly MqttUplink _uplink;
        private readonly IMqttChannelAdapter _adapter;
        private readonly QueueConsumer _consumer;
        private readonly RateLimiter? _limiter;
        private readonly CancellationToken _cancellation;
        private readonly Slot[] _slots;
        private readonly Lock _lock = new();
        private readonly TaskCompletionSource<SessionEnd> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Channel<bool> _starved = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

        // Sequence numbers: _head is the oldest unconfirmed, _tail the next to send. Both move
        // only in the driver, under _lock so the read loop sees them consistently.
        private long _head;
        private long _tail;
        private Delivery? _held; // read, waiting for the rate limit
        private int _requested;
        private int _driving;
        private volatile bool _stopSending;
        private Task _continuation = Task.CompletedTask;

        public PublishWindow(MqttUplink uplink, IMqttChannelAdapter adapter, QueueConsumer consumer, int window, CancellationToken cancellation)
        {
            _uplink = uplink;
            _adapter = adapter;
            _consumer = consumer;
            _cancellation = cancellation;
            _slots = new Slot[window];
            _limiter = uplink._options.DrainRate > 0 ? new RateLimiter(uplink._options.DrainRate, uplink._time) : null;
            _starved.Writer.TryWrite(true); // nothing read yet: the pump starts by waiting for messages
        }

        private enum SlotState : byte
        {
            Free,
            Sent,
            Done,
        }

        /// <summary>
        /// Completes when the session's sending is over: with an exception when a send failed,
        /// with <see cref="SessionEnd.Lost"/> once <see cref="StopSending"/> was called and
        /// everything sent is confirmed.
        /// </summary>
        public Task<SessionEnd> Completion => _completion.Task;

        /// <summary>Waits until the window ran out of messages to send (the pump then waits for the queue).</summary>
        public ValueTask<bool> WaitStarvedAsync(CancellationToken cancellationToken) => _starved.Reader.ReadAsync(cancellationToken);

        /// <summary>Sends nothing more; <see cref="Completion"/> completes once what is in flight is confirmed.</summary>
        public void StopSending()
        {
            _stopSending = true;
            Drive();
        }

        public void Drive()
        {
            Interlocked.Exchange(ref _requested, 1);
            Run();
        }

        /// <summary>Takes the driver role for good: no confirmation or send runs after this returns.</summary>
        public async Task CloseAsync()
        {
            _stopSending = true;
            while (Interlocked.CompareExchange(ref _driving, 1, 0) != 0)
            {
                await Volatile.Read(ref _continuation).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ForceYielding);
            }

            _completion.TrySetResult(SessionEnd.Lost);
        }

        // On the connection's read loop.
        public bool TryComplete(MqttPubAckPacket acknowledgement)
        {
            lock (_lock)
            {
                if (!TryFind(acknowledgement.PacketIdentifier, out var index) || _slots[index].State != SlotState.Sent)
                {
                    return false; // not one of ours: MQTTnet's client decides
                }

                _slots[index].Complete((int)acknowledgement.ReasonCode, acknowledgement.ReasonString);
            }

            Drive();
            return true;
        }

        private static ushort PacketIdOf(long sequence) => (ushort)((sequence % MaxPacketId) + 1);

        // Under _lock: the slot of a packet identifier within [head, tail).
        private bool TryFind(ushort id, out int index)
        {
            index = -1;
            if (id == 0)
            {
                return false;
            }

            var offset = ((id - 1) - (int)(_head % MaxPacketId) + MaxPacketId) % MaxPacketId;
            var sequence = _head + offset;
            if (sequence >= _tail)
            {
                return false;
            }

            index = (int)(sequence % _slots.Length);
            return _slots[index].PacketId == id;
        }

        private void Run()
        {
            while (Interlocked.CompareExchange(ref _driving, 1, 0) == 0)
            {
                while (Interlocked.Exchange(ref _requested, 0) == 1)
                {
                    Task? wait;
                    try
                    {
                        wait = StepAsync();
                    }
#pragma warning disable CA1031 // The session ends with it; everything unconfirmed is requeued.
                    catch (Exception ex)
#pragma warning restore CA1031
                    {
                        Fail(ex);
                        wait = null;
                    }

                    if (wait is not null)
                    {
                        Volatile.Write(ref _continuation, ResumeAfterAsync(wait)); // keeps the role
                        return;
                    }
                }

                Interlocked.Exchange(ref _driving, 0); // a full fence: a request made meanwhile is seen below
                if (Volatile.Read(ref _requested) == 0)
                {
                    return;
                }
            }
        }

        private async Task ResumeAfterAsync(Task wait)
        {
            try
            {
                await wait;
            }
#pragma warning disable CA1031 // As in Run.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Fail(ex);
            }

            Interlocked.Exchange(ref _requested, 1);
            Interlocked.Exchange(ref _driving, 0);
            Run();
        }

        private void Fail(Exception ex)
        {
            _stopSending = true;
            // A closed connection is not a failure to report: MQTTnet disposes its adapter when
            // the broker hangs up (some do after refusing a publish), and the session just ends.
            if (ex is not (MqttCommunicationException or OperationCanceledException or ObjectDisposedException))
            {
                UplinkLog.SendFailed(_uplink._logger, _uplink.Name, ex);
            }

            _completion.TrySetException(ex);
        }

        // Confirms the head, then fills the window. Returns what it has to wait for, or null.
        private Task? StepAsync()
        {
            var wait = ConfirmHeadAsync() ?? FillAsync();
            lock (_lock)
            {
                // What the stall bound is measured on: the oldest publish still unconfirmed.
                ref var head = ref _slots[_head % _slots.Length];
                Volatile.Write(ref _uplink._awaitingSince, _head < _tail && head.State != SlotState.Done ? head.SentAt : 0);
            }

            return wait;
        }

        private Task? FillAsync()
        {
            Task? wait;

            while (!_stopSending)
            {
                if (_tail - _head >= _slots.Length)
                {
                    return null; // full: acknowledgements drive the next sends
                }

                if (_tail - _head + _uplink.Unsynced.Count >= _uplink.Unsynced.Limit)
                {
                    _uplink.Unsynced.Sync(); // its completion drives the next sends
                    return null;
                }

                if (_held is null)
                {
                    if (!_consumer.TryRead(out var delivery))
                    {
                        _starved.Writer.TryWrite(true);
                        return null;
                    }

                    _held = delivery;
                }

                if (_limiter is not null)
                {
                    var turn = _limiter.WaitAsync(_cancellation);
                    if (!turn.IsCompleted)
                    {
                        return SendHeldAfterAsync(turn);
                    }
                }

                wait = SendHeldAsync();
                if (wait is not null)
                {
                    return wait;
                }
            }

            return null;
        }

        private async Task SendHeldAfterAsync(ValueTask turn)
        {
            await turn;
            var wait = SendHeldAsync();
            if (wait is not null)
            {
                await wait;
            }
        }

        private Task? SendHeldAsync()
        {
            var delivery = _held!.Value;
            _held = null;
            var message = _uplink.ToRemote(delivery.Message);
            var qos = (byte)message.QualityOfServiceLevel;
            MqttPublishPacket? packet = null;
            string? invalid = null;
            try
            {
                MqttTopicValidator.ThrowIfInvalid(message.Topic);
                packet = MqttPublishPacketFactory.Create(message);
            }
            catch (MqttProtocolViolationException ex)
            {
                invalid = ex.Message; // no broker would take it: dead-lettered like a rejection, never sent
            }

            long sequence;
            lock (_lock)
            {
                sequence = _tail;
                ref var slot = ref _slots[sequence % _slots.Length];
                slot = new Slot
                {
                    DeliveryTag = delivery.DeliveryTag,
                    Message = delivery.Message,
                    Topic = message.Topic,
                    SentAt = _uplink._time.GetTimestamp(),
                    PacketId = qos > 0 && packet is not null ? PacketIdOf(sequence) : (ushort)0,
                    State = SlotState.Sent,
                };
                if (packet is null)
                {
                    slot.Complete((int)MqttClientPublishReasonCode.TopicNameInvalid, invalid);
                }
                else
                {
                    packet.PacketIdentifier = slot.PacketId;
                }

                _tail = sequence + 1;
            }

            Volatile.Write(ref _uplink._inFlight, (int)(_tail - _head));
            if (packet is null)
            {
                Interlocked.Exchange(ref _requested, 1);
                return null;
            }

            var send = _adapter.SendPacketAsync(packet, _cancellation);
            if (qos == 0)
            {
                if (!send.IsCompletedSuccessfully)
                {
                    return CompleteUnconfirmedAfterAsync(send, sequence);
                }

                CompleteUnconfirmed(sequence);
                return null;
            }

            return send.IsCompletedSuccessfully ? null : send; // pending or failed: the driver waits for it
        }

        // QoS 0: done once written.
        private void CompleteUnconfirmed(long sequence)
        {
            lock (_lock)
            {
                _slots[sequence % _slots.Length].Complete(0, null);
            }

            Interlocked.Exchange(ref _requested, 1);
        }

        private async Task CompleteUnconfirmedAfterAsync(Task send, long sequence)
        {
            await send;
            CompleteUnconfirmed(sequence);
        }

        // The confirmed run at the head leaves the queue in one settlement. A rejected message is
        // settled only once the dead-letter queue has it, so a crash in between, a session that
        // ends while the dead-letter queue refuses it, or a failed dead-letter publish sends it
        // again rather than losing it.
        private Task? ConfirmHeadAsync()
        {
            ulong last = 0;
            var confirmed = 0;
            var forwarded = 0;
            Slot rejected = default;
            var rejectedAt = 0L;
            lock (_lock)
            {
                while (_head < _tail)
                {
                    ref var slot = ref _slots[_head % _slots.Length];
                    if (slot.State != SlotState.Done)
                    {
                        break;
                    }

                    if (slot.ReasonCode >= 0x80 && !slot.DeadLettered)
                    {
                        if (!_completion.Task.IsCompleted) // an ended session leaves it queued
                        {
                            rejected = slot;
                            rejectedAt = _head;
                        }

                        break;
                    }

                    forwarded += slot.ReasonCode < 0x80 ? 1 : 0;
                    last = slot.DeliveryTag;
                    confirmed++;
                    slot = default;
                    _head++;
                }

            }

            if (confirmed > 0)
            {
                _consumer.Ack(last, multiple: confirmed > 1); // tags are issued and confirmed in order
                Volatile.Write(ref _uplink._inFlight, (int)(_tail - _head));
                _uplink.Unsynced.Add(confirmed, (int)(_tail - _head));
                if (forwarded > 0)
                {
                    _uplink._stalled = false; // stalled until the broker confirms something again
                    Interlocked.Add(ref _uplink._forwarded, forwarded);
                    Interlocked.Exchange(ref _uplink._lastConfirmed, _uplink._time.GetTimestamp());
                }
            }

            if (rejected.Message is not null)
            {
                Interlocked.Exchange(ref _requested, 1); // settle it once dead-lettered
                var dead = DeadLetterAsync(rejected, rejectedAt);
                return dead.IsCompletedSuccessfully ? null : dead;
            }

            if (_stopSending && _head == _tail)
            {
                _completion.TrySetResult(SessionEnd.Lost);
            }

            return null;
        }

        // Holds the driver role until the dead-letter queue has the message: the head does not
        // move meanwhile, so the slot is still the one read.
        private async Task DeadLetterAsync(Slot rejected, long sequence)
        {
            await _uplink.DeadLetterAsync(rejected.Message!, rejected.Topic!, rejected.ReasonCode, rejected.ReasonString, _cancellation);
            lock (_lock)
            {
                _slots[sequence % _slots.Length].DeadLettered = true;
            }
        }

        private struct Slot
        {
            public ulong DeliveryTag;
            public GatewayMessage? Message;
            public string? Topic;
            public string? ReasonString;
            public long SentAt;
            public int ReasonCode;
            public ushort PacketId;
            public SlotState State;
            public bool DeadLettered;

            public void Complete(int reasonCode, string? reasonString)
            {
                State = SlotState.Done;
                ReasonCode = reasonCode;
                ReasonString = reasonString;
            }
        }
    }
}
