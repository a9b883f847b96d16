//! X's chunked media upload (v2): `initialize` declares the type and size, `append` sends
//! numbered segments, `finalize` checks they add up; a video is then processed (its status
//! polled) before a post may carry it. Alt text is set with the media metadata endpoint.
//! Limits as X states them: images 5 MB, GIFs 15 MB, videos 512 MB, segments 5 MB.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::{FakeX, Media, MediaKind};

/// How long after finalize a video's processing takes (X says when to look again).
pub const PROCESSING_MS: u64 = 1_000;
/// The largest segment `append` takes.
pub const MAX_SEGMENT_BYTES: usize = 5 * 1024 * 1024;
/// X keeps an upload this long.
pub const EXPIRES_AFTER_SECS: u64 = 86_400;

/// The kind and the byte limit of a media type X takes.
pub fn kind_of(media_type: &str) -> Option<(MediaKind, u64)> {
    match media_type {
        "image/jpeg" | "image/png" | "image/webp" => Some((MediaKind::Photo, 5 * 1024 * 1024)),
        "image/gif" => Some((MediaKind::AnimatedGif, 15 * 1024 * 1024)),
        "video/mp4" => Some((MediaKind::Video, 512 * 1024 * 1024)),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub(super) struct Upload {
    owner: String,
    kind: MediaKind,
    media_key: String,
    total_bytes: u64,
    /// segment index → its length
    segments: BTreeMap<u32, usize>,
    /// When processing ends (unix ms), once finalized.
    ready_at: Option<u64>,
}

/// Why an upload step was refused: the parameter and X's message.
#[derive(Debug, PartialEq, Eq)]
pub struct UploadRefused {
    pub parameter: &'static str,
    pub message: String,
}

fn refused(parameter: &'static str, message: impl Into<String>) -> UploadRefused {
    UploadRefused {
        parameter,
        message: message.into(),
    }
}

/// A finalized upload as X describes it.
pub struct Finalized {
    pub media_id: String,
    pub media_key: String,
    pub size: u64,
    /// Unix ms when processing ends; `None`: usable now.
    pub processing_until: Option<u64>,
}

impl FakeX {
    /// `initialize`: a new upload for the user, or why not.
    pub(crate) fn start_upload(
        &self,
        owner: &str,
        media_type: &str,
        total_bytes: u64,
    ) -> Result<(String, String), UploadRefused> {
        let Some((kind, limit)) = kind_of(media_type) else {
            return Err(refused(
                "media_type",
                format!("The media_type [{media_type}] is not supported"),
            ));
        };
        if total_bytes == 0 || total_bytes > limit {
            return Err(refused(
                "total_bytes",
                format!("total_bytes must be 1 to {limit} for {media_type}"),
            ));
        }
        let media_id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let media_key = format!("{}_{media_id}", kind.key_prefix());
        let upload = Upload {
            owner: owner.to_string(),
            kind,
            media_key: media_key.clone(),
            total_bytes,
            segments: BTreeMap::new(),
            ready_at: None,
        };
        self.inner().uploads.insert(media_id.clone(), upload);
        Ok((media_id, media_key))
    }

    /// `append`: one segment of the user's open upload (sending a segment again replaces it).
    pub(crate) fn append_segment(
        &self,
        owner: &str,
        media_id: &str,
        index: u32,
        len: usize,
    ) -> Result<(), UploadRefused> {
        if len == 0 || len > MAX_SEGMENT_BYTES {
            return Err(refused("media", "a segment is 1 byte to 5 MB"));
        }
        if index > 999 {
            return Err(refused("segment_index", "segment_index is 0 to 999"));
        }
        let mut inner = self.inner();
        match inner.uploads.get_mut(media_id) {
            Some(upload) if upload.owner == owner && upload.ready_at.is_none() => {
                upload.segments.insert(index, len);
                Ok(())
            }
            Some(upload) if upload.owner == owner => {
                Err(refused("id", "the upload is already finalized"))
            }
            _ => Err(refused("id", "no upload in progress has this id")),
        }
    }

    /// `finalize`: the segments, numbered from 0 without a gap, add up to the declared size.
    pub(crate) fn finalize_upload(
        &self,
        owner: &str,
        media_id: &str,
    ) -> Result<Finalized, UploadRefused> {
        let now = self.now_millis();
        let mut inner = self.inner();
        let Some(upload) = inner.uploads.get_mut(media_id).filter(|u| u.owner == owner) else {
            return Err(refused("id", "no upload in progress has this id"));
        };
        let contiguous = upload
            .segments
            .keys()
            .copied()
            .eq(0..upload.segments.len() as u32);
        let received: u64 = upload.segments.values().map(|l| *l as u64).sum();
        if !contiguous || received != upload.total_bytes {
            return Err(refused(
                "id",
                format!(
                    "the segments hold {received} bytes (indexes {:?}), not the {} declared",
                    upload.segments.keys().collect::<Vec<_>>(),
                    upload.total_bytes
                ),
            ));
        }
        let processing = upload.kind == MediaKind::Video;
        let ready_at = if processing { now + PROCESSING_MS } else { now };
        upload.ready_at = Some(ready_at);
        let finalized = Finalized {
            media_id: media_id.to_string(),
            media_key: upload.media_key.clone(),
            size: upload.total_bytes,
            processing_until: processing.then_some(ready_at),
        };
        let media = Media {
            media_id: media_id.to_string(),
            media_key: upload.media_key.clone(),
            kind: upload.kind,
            owner: owner.to_string(),
        };
        if !processing {
            inner.media.insert(media_id.to_string(), media);
        }
        Ok(finalized)
    }

    /// `STATUS`: the upload's processing, done once its time has come (the medium is then
    /// usable in a post).
    pub(crate) fn upload_status(&self, owner: &str, media_id: &str) -> Option<Finalized> {
        let now = self.now_millis();
        let mut inner = self.inner();
        let upload = inner
            .uploads
            .get(media_id)
            .filter(|u| u.owner == owner)?
            .clone();
        let ready_at = upload.ready_at?;
        if ready_at <= now && !inner.media.contains_key(media_id) {
            let media = Media {
                media_id: media_id.to_string(),
                media_key: upload.media_key.clone(),
                kind: upload.kind,
                owner: owner.to_string(),
            };
            inner.media.insert(media_id.to_string(), media);
        }
        Some(Finalized {
            media_id: media_id.to_string(),
            media_key: upload.media_key,
            size: upload.total_bytes,
            processing_until: (ready_at > now).then_some(ready_at),
        })
    }

    /// Sets a medium's alt text (its owner's); false when there is no such medium.
    pub(crate) fn set_alt_text(&self, owner: &str, media_id: &str, text: &str) -> bool {
        let mut inner = self.inner();
        let known = inner
            .uploads
            .get(media_id)
            .is_some_and(|u| u.owner == owner && u.ready_at.is_some())
            || inner.media.get(media_id).is_some_and(|m| m.owner == owner);
        if known {
            inner
                .alt_texts
                .insert(media_id.to_string(), text.to_string());
        }
        known
    }

    /// A medium's alt text, as set.
    pub fn alt_text(&self, media_id: &str) -> Option<String> {
        self.inner().alt_texts.get(media_id).cloned()
    }

    /// The segments an upload received: (index, bytes), in order.
    pub fn upload_segments(&self, media_id: &str) -> Vec<(u32, usize)> {
        self.inner()
            .uploads
            .get(media_id)
            .map(|u| u.segments.iter().map(|(i, l)| (*i, *l)).collect())
            .unwrap_or_default()
    }
}
