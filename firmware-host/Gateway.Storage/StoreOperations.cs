using Gateway.Routing;
using LiteDB;

namespace Gateway.Storage;

public sealed partial class LiteDbMessageStore
{
    /// <summary>One request to the writer thread; applied inside the group's transaction.</summary>
    private abstract class StoreOperation
    {
        /// <summary>Applies the operation; true when it wrote.</summary>
        public abstract bool Apply(LiteDbMessageStore store);

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

    private sealed class AppendOperation(string queue, GatewayMessage message) : StoreOperation<long>
    {
        public override bool Apply(LiteDbMessageStore store)
        {
            var offset = store._lastOffsets.GetValueOrDefault(queue) + 1;
            store.Log.Insert(MessageDocument.ToDocument(queue, offset, message));
            store._lastOffsets[queue] = offset;
            SetResult(offset);
            return true;
        }
    }

    private sealed class ReadOperation(string queue, long fromOffset, int max) : StoreOperation<IReadOnlyList<StoredMessage>>
    {
        public override bool Apply(LiteDbMessageStore store)
        {
            var from = MessageDocument.Key(queue, Math.Max(fromOffset, 0));
            var to = MessageDocument.Key(queue, long.MaxValue);
            var messages = new List<StoredMessage>(Math.Min(max, 1024));
            foreach (var document in store.Log.Find(Query.Between("_id", from, to), limit: max))
            {
                messages.Add(new StoredMessage(MessageDocument.OffsetOf(document["_id"].AsString), MessageDocument.ToMessage(document)));
            }

            SetResult(messages);
            return false;
        }
    }

    // Removes everything up to and including the offset: the consumer has it.
    private sealed class TrimOperation(string queue, long offset) : StoreOperation<bool>
    {
        public override bool Apply(LiteDbMessageStore store)
        {
            var deleted = store.Log.DeleteMany(Query.Between("_id", MessageDocument.Key(queue, 0), MessageDocument.Key(queue, offset)));
            SetResult(true);
            return deleted > 0;
        }
    }

    private sealed class CountOperation(string queue) : StoreOperation<long>
    {
        public override bool Apply(LiteDbMessageStore store)
        {
            SetResult(store.Log.LongCount(Query.Between("_id", MessageDocument.Key(queue, 0), MessageDocument.Key(queue, long.MaxValue))));
            return false;
        }
    }

    private ILiteCollection<BsonDocument> Retained => _database.GetCollection(MessageDocument.RetainedCollection);

    private sealed class SetRetainedOperation(string topic, GatewayMessage? message) : StoreOperation<bool>
    {
        public override bool Apply(LiteDbMessageStore store)
        {
            if (message is null)
            {
                SetResult(store.Retained.Delete(topic));
            }
            else
            {
                var document = MessageDocument.ToDocument(string.Empty, 0, message);
                document["_id"] = topic;
                SetResult(store.Retained.Upsert(document));
            }

            return true;
        }
    }

    private sealed class LoadRetainedOperation : StoreOperation<IReadOnlyList<KeyValuePair<string, GatewayMessage>>>
    {
        public override bool Apply(LiteDbMessageStore store)
        {
            var retained = new List<KeyValuePair<string, GatewayMessage>>();
            foreach (var document in store.Retained.FindAll())
            {
                retained.Add(new(document["_id"].AsString, MessageDocument.ToMessage(document)));
            }

            SetResult(retained);
            return false;
        }
    }
}
