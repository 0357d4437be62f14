trait Uploader {
    #[graceful::tracked]
    fn upload(&self, bytes: &[u8]) -> usize;
}

fn main() {}
