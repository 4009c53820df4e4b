using Microsoft.Extensions.Time.Testing;

namespace Gateway.Routing.Tests;

public abstract class RouterTestBase : IDisposable
{
    protected RouterTestBase()
    {
        Router = new MessageRouter(Time);
    }

    protected FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    protected MessageRouter Router { get; }

    public void Dispose()
    {
        Router.Dispose();
        GC.SuppressFinalize(this);
    }

    protected static GatewayMessage Message(string exchange, string key, string body = "x", MessageProperties? properties = null) =>
        new(exchange, key, System.Text.Encoding.UTF8.GetBytes(body), properties);

    protected static string Text(Delivery delivery) => System.Text.Encoding.UTF8.GetString(delivery.Message.Body.Span);

    protected MessageQueue Queue(string name, IReadOnlyDictionary<string, object?>? arguments = null) =>
        Router.DeclareQueue(name, new QueueOptions { Arguments = arguments });

    protected static List<string> ReadAll(QueueConsumer consumer)
    {
        var bodies = new List<string>();
        while (consumer.TryRead(out var delivery))
        {
            bodies.Add(Text(delivery));
        }

        return bodies;
    }

    protected static List<Delivery> ReadDeliveries(QueueConsumer consumer)
    {
        var deliveries = new List<Delivery>();
        while (consumer.TryRead(out var delivery))
        {
            deliveries.Add(delivery);
        }

        return deliveries;
    }

    protected static List<string> Drain(MessageQueue queue)
    {
        using var consumer = queue.AddConsumer(new ConsumerOptions { AutoAck = true });
        return ReadAll(consumer);
    }
}
