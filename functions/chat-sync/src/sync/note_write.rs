//! One conversation's notes as a round writes them: the parts rendered now, the notes that hold it so far, and
//! what each note's body becomes. The round fills it at the claim (`round`); the notes' writes read it (`notes`).

use crate::domain::note::NotePart;
use crate::domain::NoteId;

/// One conversation's notes: the parts rendered now, and the notes that hold it so far (part 1 first).
pub(super) struct ConversationWrite {
    pub(super) cid: String,
    /// The first notes, which hold messages no longer stored here: never rendered again (see `domain::archive`).
    pub(super) frozen: usize,
    /// An erasure may have reached the frozen notes' lines: they are emptied.
    pub(super) erase_frozen: bool,
    /// The parts after the frozen ones (numbered from `frozen + 1`).
    pub(super) parts: Vec<NotePart>,
    pub(super) notes: Vec<NoteId>,
    /// A note's creation went unanswered last time: look for it before creating one.
    pub(super) creating: bool,
    /// The notes changed this round (saved at settling).
    pub(super) changed: bool,
    /// Bodies for notes of parts that no longer exist (the conversation shrank).
    pub(super) surplus: Vec<String>,
    /// Bodies for the frozen notes, when an erasure reached them.
    pub(super) erased: Vec<String>,
}

impl ConversationWrite {
    /// How many notes the conversation needs: the frozen ones, then its parts.
    pub(super) fn needed(&self) -> usize {
        self.frozen + self.parts.len()
    }

    /// The body the note at `index` (0 for part 1) gets now; `None` leaves it as it is (a frozen note).
    pub(super) fn body(&self, index: usize) -> Option<&str> {
        if index < self.frozen {
            return self.erase_frozen.then(|| self.erased[index].as_str());
        }
        let index = index - self.frozen;
        Some(match self.parts.get(index) {
            Some(part) => &part.body,
            None => &self.surplus[index - self.parts.len()],
        })
    }
}
