using Gateway.Routing;
using LiteDB;

namespace Gateway.Storage;

public sealed partial class LiteDbMessageStore
{
    /// <summary>What applying an operation did to the database.</summary>
    private enum StoreEffect
    {
        None,

        /// <summary>Wrote, but losing it in a crash costs only a redelivery (a removal).</summary>
        Wrote,

        /// <summary>Wrote something a caller is waiting to see on disk.</summary>
        MustFlush,
    }

    /// <summary>One request to the writer thread; applied inside the group's transaction.</summary>
    private abstract class StoreOperation
    {
        public abstract StoreEffect Apply(LiteDbMessageStore store);

        public abstract void Complete();

        public abstract void Fail(Exception exception);
    }

    private abstract class StoreOperation<T> : StoreOperation
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;

        public Task<T> Task => _completion.Task;

        public override void Complete() => _completion.TrySetResult(_result);

        public override void Fail(Exception exception) => _completion.TrySetException(exception);

        protected void SetResult(T result) => _result = result;
    }

    // With no offset the store picks the next one of the queue's log.
    private sealed class AppendOperation(string queue, long? offset, GatewayMessage message, TimeSpan enqueuedAt) : StoreOperation<long>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            SetResult(store._log.Append(queue, offset, message, enqueuedAt));
            return StoreEffect.MustFlush;
        }
    }

    private sealed class ReadOperation(string queue, long fromOffset, long toOffset, int max) : StoreOperation<IReadOnlyList<StoredMessage>>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            SetResult(store._log.Read(queue, fromOffset, toOffset, max));
            return StoreEffect.None;
        }
    }

    // Removes the offsets from first to last inclusive: consumed, dropped or purged.
    private sealed class TrimOperation(string queue, long first, long last) : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            var deleted = store._log.Remove(queue, first, last);
            store._deferredRemovals += deleted;
            SetResult(deleted > 0);
            return deleted > 0 ? StoreEffect.Wrote : StoreEffect.None;
        }
    }

    // Makes the group write the removals deferred so far (RemovalDelay is up).
    private sealed class WriteRemovalsOperation : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            store._writeRemovals = true;
            return StoreEffect.None;
        }
    }

    // Makes the group write the removals deferred so far and flush them like an append: the
    // operations before it are in the same group or an earlier one, so theirs are on disk too.
    private sealed class SyncRemovalsOperation : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            store._writeRemovals = true;
            return StoreEffect.MustFlush;
        }
    }

    // The group saves the clock whenever it writes; this makes it write.
    private sealed class SaveClockOperation : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store) => StoreEffect.MustFlush;
    }

    private sealed class CountOperation(string queue) : StoreOperation<long>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            SetResult(store._log.Count(queue));
            return StoreEffect.None;
        }
    }

    private ILiteCollection<BsonDocument> Retained => _database.GetCollection(MessageDocument.RetainedCollection);

    private sealed class SetRetainedOperation(string topic, GatewayMessage? message) : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            if (message is null)
            {
                SetResult(store.Retained.Delete(topic));
            }
            else
            {
                var document = MessageDocument.ToDocument(string.Empty, 0, message, TimeSpan.Zero);
                document["_id"] = topic;
                SetResult(store.Retained.Upsert(document));
            }

            return StoreEffect.MustFlush;
        }
    }

    private sealed class LoadRetainedOperation : StoreOperation<IReadOnlyList<KeyValuePair<string, GatewayMessage>>>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            var retained = new List<KeyValuePair<string, GatewayMessage>>();
            foreach (var document in store.Retained.FindAll())
            {
                retained.Add(new(document["_id"].AsString, MessageDocument.ToMessage(document)));
            }

            SetResult(retained);
            return StoreEffect.None;
        }
    }
}
