"""Sample notifications for `websub`: YouTube's documented push-notification Atom feed
(a new or updated video), signed with X-Hub-Signature like Google's hub does (sha1)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from infra.local.samples.base import SignedRequest

PROVIDER = "websub"
SAMPLES: tuple[str, ...] = ("youtube-video", "youtube-video-sha256")
_ID = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def demo_credentials() -> dict[str, str]:
    return {"secret": secrets.token_urlsafe(24)}


def hub_signature(secret: str, body: bytes, method: str = "sha1") -> str:
    return f"{method}=" + hmac.new(secret.encode("utf-8"), body, getattr(hashlib, method)).hexdigest()


def _feed(now: datetime) -> bytes:
    video = "".join(secrets.choice(_ID) for _ in range(11))
    channel = "UC" + "".join(secrets.choice(_ID) for _ in range(22))
    published = (now - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    updated = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}+00:00"
    title = "How to connect webhooks in five minutes & other tips"
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns="http://www.w3.org/2005/Atom">
  <link rel="hub" href="https://pubsubhubbub.appspot.com"/>
  <link rel="self" href="https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel}"/>
  <title>YouTube video feed</title>
  <updated>{updated}</updated>
  <entry>
    <id>yt:video:{video}</id>
    <yt:videoId>{video}</yt:videoId>
    <yt:channelId>{channel}</yt:channelId>
    <title>{escape(title)}</title>
    <link rel="alternate" href="http://www.youtube.com/watch?v={video}"/>
    <author>
     <name>Switchboard Demo</name>
     <uri>http://www.youtube.com/channel/{channel}</uri>
    </author>
    <published>{published}</published>
    <updated>{updated}</updated>
  </entry>
</feed>
""".encode()


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    body = _feed(now)
    method = "sha256" if sample == "youtube-video-sha256" else "sha1"
    headers = {
        "Content-Type": "application/atom+xml",
        "User-Agent": "FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)",
    }
    if credentials.get("secret"):
        headers["X-Hub-Signature"] = hub_signature(credentials["secret"], body, method)
    return SignedRequest("POST", url, headers, body)
