//! A page of a list as a request asks for it: a page number from 1 and a size from 1,
//! whose offset into the list fits in an `i64`. Built only through `new`, so no offset,
//! next page or previous page computed from it can overflow.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    number: i64,
    size: i64,
}

impl Paging {
    /// `None` unless the number and the size are at least 1 and the page's offset fits.
    pub fn new(number: i64, size: i64) -> Option<Self> {
        if number < 1 || size < 1 {
            return None;
        }
        (number - 1).checked_mul(size)?;
        Some(Self { number, size })
    }

    /// The first page at this size (a size below 1 counts as 1).
    pub fn first(size: i64) -> Self {
        Self {
            number: 1,
            size: size.max(1),
        }
    }

    /// The highest page number that [`Paging::new`] accepts at this size.
    pub fn last_number(size: i64) -> i64 {
        (i64::MAX / size.max(1)).saturating_add(1)
    }

    pub fn number(self) -> i64 {
        self.number
    }

    pub fn size(self) -> i64 {
        self.size
    }

    /// How many rows come before this page. `new` checked that it fits.
    pub fn offset(self) -> i64 {
        (self.number - 1) * self.size
    }

    pub fn previous(self) -> Option<Self> {
        Self::new(self.number - 1, self.size)
    }

    pub fn next(self) -> Option<Self> {
        Self::new(self.number.checked_add(1)?, self.size)
    }

    /// How many pages of this size `total` rows fill.
    pub fn pages_for(self, total: i64) -> i64 {
        total.max(0).saturating_add(self.size - 1) / self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_start_at_one() {
        assert_eq!(Paging::new(1, 20).map(Paging::offset), Some(0));
        assert_eq!(Paging::new(3, 20).map(Paging::offset), Some(40));
        for (number, size) in [(0, 20), (-1, 20), (i64::MIN, 20), (1, 0), (1, -5)] {
            assert_eq!(
                Paging::new(number, size),
                None,
                "page {number} of size {size}"
            );
        }
    }

    #[test]
    fn a_page_whose_offset_would_overflow_does_not_exist() {
        assert_eq!(Paging::new(i64::MAX, 20), None);
        let last = Paging::last_number(20);
        let page = Paging::new(last, 20).expect("the last page exists");
        assert!(page.offset() > 0);
        assert_eq!(page.next(), None);
        assert_eq!(Paging::new(last + 1, 20), None);
        // At size 1 every positive i64 is a page, and the last has no next.
        let page = Paging::new(i64::MAX, 1).expect("page i64::MAX of size 1");
        assert_eq!(page.next(), None);
    }

    #[test]
    fn the_first_page_has_no_previous() {
        let first = Paging::first(50);
        assert_eq!(first.previous(), None);
        assert_eq!(
            first.next().and_then(Paging::previous).map(Paging::number),
            Some(1)
        );
    }

    #[test]
    fn pages_for_rounds_up() {
        let paging = Paging::first(20);
        assert_eq!(paging.pages_for(0), 0);
        assert_eq!(paging.pages_for(20), 1);
        assert_eq!(paging.pages_for(21), 2);
    }
}
