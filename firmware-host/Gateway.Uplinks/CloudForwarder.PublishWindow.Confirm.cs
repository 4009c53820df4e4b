namespace Gateway.Uplinks;

internal sealed partial class CloudForwarder
{
    // The link's answers, and the settlement of the confirmed run at the head.
    private sealed partial class PublishWindow
    {
        public bool TryComplete(long sequence, in PublishResult result)
        {
            lock (_lock)
            {
                if (sequence < _head || sequence >= _tail || !TryMark(sequence, result))
                {
                    return false;
                }
            }

            Drive();
            return true;
        }

        public int CompleteThrough(long sequence, in PublishResult result)
        {
            var marked = 0;
            lock (_lock)
            {
                for (var s = _head; s <= sequence && s < _tail; s++)
                {
                    marked += TryMark(s, result) ? 1 : 0;
                }
            }

            if (marked > 0)
            {
                Drive();
            }

            return marked;
        }

        public bool TryCompleteWrapped(int identifier, int modulus, in PublishResult result)
        {
            lock (_lock)
            {
                if (identifier <= 0 || identifier > modulus)
                {
                    return false;
                }

                var offset = ((identifier - 1) - (int)(_head % modulus) + modulus) % modulus;
                var sequence = _head + offset;
                if (sequence >= _tail || !TryMark(sequence, result))
                {
                    return false; // not one of ours
                }
            }

            Drive();
            return true;
        }

        // Under _lock, for a sequence within [head, tail).
        private bool TryMark(long sequence, in PublishResult result)
        {
            ref var slot = ref _slots[sequence % _slots.Length];
            if (slot.State != SlotState.Sent)
            {
                return false;
            }

            slot.State = SlotState.Done;
            slot.Result = result;
            return true;
        }

        // The confirmed run at the head leaves the queue in one settlement. A rejected message is
        // settled only once the dead-letter queue has it, so a crash in between, a session that
        // ends while the dead-letter queue refuses it, or a failed dead-letter publish sends it
        // again rather than losing it. A transient failure ends the session: it and everything
        // after it are sent again, in order, over the next link.
        private Task? ConfirmHeadAsync()
        {
            ulong last = 0;
            var confirmed = 0;
            var forwarded = 0;
            Slot rejected = default;
            var rejectedAt = 0L;
            string? failed = null;
            lock (_lock)
            {
                while (_head < _tail)
                {
                    ref var slot = ref _slots[_head % _slots.Length];
                    if (slot.State != SlotState.Done)
                    {
                        break;
                    }

                    if (slot.Result.Failure == FailureKind.Transient)
                    {
                        failed = slot.Result.Reason ?? "publish failed";
                        break;
                    }

                    if (slot.Result.IsRejected && !slot.DeadLettered)
                    {
                        if (!_completion.Task.IsCompleted) // an ended session leaves it queued
                        {
                            rejected = slot;
                            rejectedAt = _head;
                        }

                        break;
                    }

                    forwarded += slot.Result.IsConfirmed ? 1 : 0;
                    last = slot.DeliveryTag;
                    confirmed++;
                    slot = default;
                    _head++;
                }
            }

            if (confirmed > 0)
            {
                _consumer.Ack(last, multiple: confirmed > 1); // tags are issued and confirmed in order
                Volatile.Write(ref _forwarder._inFlight, (int)(_tail - _head));
                _forwarder.Unsynced.Add(confirmed, (int)(_tail - _head));
                if (forwarded > 0)
                {
                    _forwarder.OnForwarded(forwarded);
                }
            }

            if (failed is not null && !_completion.Task.IsCompleted)
            {
                throw new CloudPublishException(failed);
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
            await _forwarder.DeadLetterAsync(rejected.Message!, rejected.Result.Reason ?? rejected.Result.Failure.ToString(), _cancellation);
            lock (_lock)
            {
                _slots[sequence % _slots.Length].DeadLettered = true;
            }
        }
    }
}
