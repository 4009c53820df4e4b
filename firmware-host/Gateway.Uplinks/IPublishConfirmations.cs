namespace Gateway.Uplinks;

/// <summary>
/// Where a link reports what the cloud answered for each publish. The forwarder numbers a
/// session's publishes 0, 1, 2… in send order (the <c>sequence</c> passed to
/// <see cref="ICloudLink.PublishAsync"/>); a sink names the publish it confirms by that number
/// (AMQP: delivery tag − 1) or by an identifier that wraps around it (MQTT packet identifiers).
/// Safe to call from any thread, typically the connection's read loop: nothing here waits.
/// </summary>
internal interface IPublishConfirmations
{
    /// <summary>False when no publish with that number awaits an answer.</summary>
    bool TryComplete(long sequence, in PublishResult result);

    /// <summary>Answers every publish up to and including <paramref name="sequence"/> still awaiting one (AMQP <c>multiple</c>); returns how many.</summary>
    int CompleteThrough(long sequence, in PublishResult result);

    /// <summary>
    /// As <see cref="TryComplete"/>, for a publish named by <c>(sequence % modulus) + 1</c> (MQTT
    /// packet identifiers, modulus 65535); resolved against the publishes awaiting an answer,
    /// which never span more than <paramref name="modulus"/>.
    /// </summary>
    bool TryCompleteWrapped(int identifier, int modulus, in PublishResult result);
}
