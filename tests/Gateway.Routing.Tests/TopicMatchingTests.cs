namespace Gateway.Routing.Tests;

[Trait("Category", "Unit")]
public sealed class TopicMatchingTests : RouterTestBase
{
    public static TheoryData<string, string, bool> Cases => new()
    {
        // literal
        { "a.b.c", "a.b.c", true },
        { "a.b.c", "a.b", false },
        { "a.b", "a.b.c", false },
        { "a.b.c", "a.b.d", false },

        // * is exactly one word
        { "a.*.c", "a.b.c", true },
        { "a.*.c", "a.c", false },
        { "a.*.c", "a.b.b.c", false },
        { "*", "a", true },
        { "*", "a.b", false },
        { "*.*", "a.b", true },
        { "a.*", "a", false },

        // # is zero or more words, at every level
        { "#", "a", true },
        { "#", "a.b.c", true },
        { "a.#", "a", true },
        { "a.#", "a.b", true },
        { "a.#", "a.b.c.d", true },
        { "a.#", "b.a", false },
        { "#.c", "c", true },
        { "#.c", "a.b.c", true },
        { "#.c", "a.b.c.d", false },
        { "a.#.c", "a.c", true },
        { "a.#.c", "a.b.c", true },
        { "a.#.c", "a.b.x.c", true },
        { "a.#.c", "a.b.x.d", false },
        { "#.b.#", "b", true },
        { "#.b.#", "a.b.c", true },
        { "#.b.#", "a.c", false },
        { "a.*.#", "a", false },
        { "a.*.#", "a.b", true },
        { "a.*.#", "a.b.c.d", true },
        { "#.#", "a.b", true },

        // empty words (MQTT "a//b", "/a", "a/")
        { "a..b", "a..b", true },
        { "a.*.b", "a..b", true },
        { "*.a", ".a", true },
        { "a.*", "a.", true },
        { "a.#", "a.", true },
        { "a.b", "a..b", false },

        // $-prefixed first words are not matched by a leading wildcard (MQTT 4.7.2)
        { "#", "$SYS.broker.uptime", false },
        { "*.broker.uptime", "$SYS.broker.uptime", false },
        { "$SYS.#", "$SYS.broker.uptime", true },
        { "$SYS.*.uptime", "$SYS.broker.uptime", true },
        { "a.#", "a.$b", true },
        { "a.*", "a.$b", true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Pattern_matches_key_like_rabbitmq_and_mqtt(string pattern, string key, bool expected)
    {
        Queue("q");
        Router.Bind("amq.topic", "q", pattern);

        var result = Router.Route(Message("amq.topic", key));

        Assert.Equal(expected ? RouteStatus.Routed : RouteStatus.Unroutable, result.Status);
    }

    [Fact]
    public void Overlapping_bindings_deliver_once_per_queue()
    {
        var q = Queue("q");
        Queue("other");
        Router.Bind("amq.topic", "q", "a.#");
        Router.Bind("amq.topic", "q", "a.b");
        Router.Bind("amq.topic", "q", "*.b");
        Router.Bind("amq.topic", "q", "#");
        Router.Bind("amq.topic", "other", "a.*");

        var result = Router.Route(Message("amq.topic", "a.b"));

        Assert.Equal(2, result.QueueCount);
        Assert.Equal(["x"], Drain(q));
    }

    [Fact]
    public void Unbinding_stops_matching_and_leaves_other_bindings()
    {
        var q = Queue("q");
        Router.Bind("amq.topic", "q", "a.*.c");
        Router.Bind("amq.topic", "q", "a.#");

        Assert.True(Router.Unbind("amq.topic", "q", "a.#"));
        Assert.Equal(RouteStatus.Unroutable, Router.Route(Message("amq.topic", "a.b")).Status);
        Assert.Equal(RouteStatus.Routed, Router.Route(Message("amq.topic", "a.b.c")).Status);

        Assert.True(Router.Unbind("amq.topic", "q", "a.*.c"));
        Assert.Equal(RouteStatus.Unroutable, Router.Route(Message("amq.topic", "a.b.c")).Status);
        Assert.False(Router.Unbind("amq.topic", "q", "a.*.c"));
    }

    [Fact]
    public void Ten_thousand_bindings_route_to_exactly_the_matching_queues()
    {
        for (var i = 0; i < 10_000; i++)
        {
            Queue($"q{i}");
            Router.Bind("amq.topic", $"q{i}", $"sensors.{i}.temperature");
        }

        Router.Bind("amq.topic", "q42", "sensors.*.humidity");

        var result = Router.Route(Message("amq.topic", "sensors.42.temperature"));
        Assert.Equal(1, result.QueueCount);
        Assert.Equal(1, Router.GetQueue("q42").ReadyCount);

        result = Router.Route(Message("amq.topic", "sensors.7.humidity"));
        Assert.Equal(1, result.QueueCount);
        Assert.Equal(2, Router.GetQueue("q42").ReadyCount);
    }
}
